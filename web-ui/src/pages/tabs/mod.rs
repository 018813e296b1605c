//! The tabs of the mapping page, one component each.

mod backups;
mod databases;
mod instructions;
mod logs;
mod metrics;
mod partitions;
mod roles;
mod sequences;
mod slot;
mod tables;
mod verify;

use leptos::prelude::*;
use migrator_core::status::MappingStatus;

use crate::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Databases,
    Tables,
    Partitions,
    Sequences,
    Roles,
    Slot,
    Metrics,
    Logs,
    Verify,
    Backups,
    Instructions,
}

impl Tab {
    pub const ALL: [Tab; 11] = [
        Tab::Databases,
        Tab::Tables,
        Tab::Partitions,
        Tab::Sequences,
        Tab::Roles,
        Tab::Slot,
        Tab::Metrics,
        Tab::Logs,
        Tab::Verify,
        Tab::Backups,
        Tab::Instructions,
    ];

    pub fn slug(self) -> &'static str {
        match self {
            Tab::Databases => "databases",
            Tab::Tables => "tables",
            Tab::Partitions => "partitions",
            Tab::Sequences => "sequences",
            Tab::Roles => "roles",
            Tab::Slot => "slot",
            Tab::Metrics => "metrics",
            Tab::Logs => "logs",
            Tab::Verify => "verify",
            Tab::Backups => "backups",
            Tab::Instructions => "instructions",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Tab::Databases => "Databases",
            Tab::Tables => "Tables",
            Tab::Partitions => "Partitions",
            Tab::Sequences => "Sequences",
            Tab::Roles => "Roles",
            Tab::Slot => "Replication slot",
            Tab::Metrics => "Metrics",
            Tab::Logs => "Logs",
            Tab::Verify => "Verify",
            Tab::Backups => "Backups",
            Tab::Instructions => "Instructions",
        }
    }

    pub fn from_slug(slug: &str) -> Option<Tab> {
        Tab::ALL.into_iter().find(|t| t.slug() == slug)
    }

    pub fn render(self, mapping: &MappingStatus, state: &AppState) -> AnyView {
        let m = mapping.clone();
        match self {
            Tab::Databases => view! { <databases::Databases mapping=m/> }.into_any(),
            Tab::Tables => view! { <tables::Tables mapping=m/> }.into_any(),
            Tab::Partitions => view! { <partitions::Partitions mapping=m/> }.into_any(),
            Tab::Sequences => view! { <sequences::Sequences mapping=m/> }.into_any(),
            Tab::Roles => view! { <roles::Roles mapping=m/> }.into_any(),
            Tab::Slot => view! { <slot::Slot mapping=m/> }.into_any(),
            Tab::Metrics => {
                let samples = state.history.samples(&m.name);
                let window = state.history.keep();
                view! { <metrics::Metrics mapping=m samples window/> }.into_any()
            }
            Tab::Logs => {
                let entries = state.logs.recent(&m.name);
                view! { <logs::Logs entries/> }.into_any()
            }
            Tab::Verify => view! { <verify::Verify mapping=m/> }.into_any(),
            Tab::Backups => {
                let state = state.clone();
                view! { <backups::Backups mapping=m state/> }.into_any()
            }
            Tab::Instructions => view! { <instructions::Instructions mapping=m/> }.into_any(),
        }
    }
}

/// A sentence in place of an empty table.
fn empty(text: &'static str) -> AnyView {
    view! { <p class="empty">{text}</p> }.into_any()
}

/// A progress bar of bytes copied; an empty table is done.
#[component]
fn Progress(done: u64, total: u64) -> impl IntoView {
    let (value, max) = if total == 0 {
        (1, 1)
    } else {
        (done.min(total), total)
    };
    view! { <progress max=max.to_string() value=value.to_string()></progress> }
}

/// A table that scrolls sideways on its own on narrow screens, with a header row.
#[component]
fn DataTable(
    headers: &'static [&'static str],
    #[prop(optional)] class: &'static str,
    children: Children,
) -> impl IntoView {
    view! {
        <div class="scroll">
            <table class=class>
                <thead>
                    <tr>{headers.iter().map(|h| view! { <th>{*h}</th> }).collect_view()}</tr>
                </thead>
                <tbody>{children()}</tbody>
            </table>
        </div>
    }
}
