//! `/mappings/{name}`: one mapping in detail, one tab at a time (`?tab=tables`); the tabs are
//! links, so they work without JavaScript and survive the refresh.

use axum::extract::{Path, Query, State};
use axum::response::Html;
use leptos::prelude::*;
use migrator_core::findings::{Code, Finding};
use migrator_core::phase::Phase;
use migrator_core::status::MappingStatus;
use serde::Deserialize;

use super::status_bar::StatusBar;
use super::tabs::Tab;
use super::{PageError, format};
use crate::AppState;

#[derive(Deserialize)]
pub struct TabQuery {
    tab: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<TabQuery>,
) -> Result<Html<String>, PageError> {
    let (snapshot, mapping) = super::find_mapping(&state, &name)?;
    let tab = query
        .tab
        .as_deref()
        .and_then(Tab::from_slug)
        .unwrap_or(Tab::Databases);
    let tab_links = Tab::ALL
        .iter()
        .map(|t| {
            let class = if *t == tab { "tab current" } else { "tab" };
            let href = format!("/mappings/{}?tab={}", mapping.name, t.slug());
            view! { <a class=class href=href>{t.label()}</a> }
        })
        .collect_view();
    let content = tab.render(&mapping, &state);
    let stale_after = state.stale_after.as_secs_f64();
    let title = mapping.name.clone();
    let body = view! {
        <StatusBar snapshot=snapshot.clone() stale_after open_commands=state.open_commands_warning.clone()/>
        <p class="crumbs"><a href="/">"Mappings"</a>" / "{mapping.name.clone()}</p>
        <Header mapping=mapping.clone() state=state.clone()/>
        <nav class="tabs" aria-label="Sections">{tab_links}</nav>
        <section class="tab-content" id=format!("tab-{}", tab.slug())>{content}</section>
    };
    Ok(super::document(title, Some(state.refresh.as_secs()), body))
}

/// Name, light, key figures, findings and the Mark complete and Verify buttons.
#[component]
fn Header(mapping: MappingStatus, state: AppState) -> impl IntoView {
    let (light_class, light_text) = format::light(&mapping);
    let light_label = light_text.clone();
    let done = format::databases_done(&mapping);
    let total = mapping.databases.len();
    let (lag_mb, lag_time) = match mapping.lag().map(|l| (l.bytes, l.seconds)) {
        Some((bytes, seconds)) => (format::mb(bytes), format::duration(seconds)),
        None => ("–".to_owned(), "–".to_owned()),
    };
    let findings: Vec<Finding> = mapping
        .findings
        .iter()
        .cloned()
        .chain(mapping.databases.iter().flat_map(|d| {
            d.findings.iter().map(|f| {
                let mut f = f.clone();
                f.message = format!("{:?}: {}", d.name, f.message);
                f
            })
        }))
        .collect();
    let errors: Vec<String> = mapping
        .last_error
        .iter()
        .cloned()
        .chain(
            mapping
                .databases
                .iter()
                .filter_map(|d| d.last_error.as_ref().map(|e| format!("{:?}: {e}", d.name))),
        )
        .collect();
    view! {
        <div class="detail-head">
            <div class=format!("light big {light_class}") role="img" aria-label=light_label>
                <span class="lamp"></span>
                <span class="light-text">{light_text}</span>
            </div>
            <div class="detail-facts">
                <h1>{mapping.name.clone()}</h1>
                <p class="route">
                    <span>{mapping.source.clone()}</span>
                    <span class="arrow">" → "</span>
                    <span>{mapping.destination.clone()}</span>
                </p>
                <dl class="facts">
                    <div><dt>"Phase"</dt><dd>{mapping.phase.label()}</dd></div>
                    <div><dt>"Databases ready"</dt><dd>{format!("{done} / {total}")}</dd></div>
                    <div><dt>"Lag"</dt><dd>{lag_mb}</dd></div>
                    <div><dt>"Lag (time)"</dt><dd>{lag_time}</dd></div>
                    <div class="copy-rate"><dt>"Copy rate"</dt><dd>{super::rate_limit::describe(&mapping.copy)}</dd></div>
                    <div class="wal-forecast"><dt>"WAL on the source"</dt><dd>{format::wal_forecast(mapping.wal.as_ref())}</dd></div>
                </dl>
                <super::rate_limit::LimitForm mapping=mapping.name.clone() rate=mapping.copy.clone() state=state.clone()/>
            </div>
            <div class="head-commands">
                <CompleteButton mapping=mapping.clone()/>
                <super::verify::VerifyButton mapping=mapping.clone() state=state.clone()/>
            </div>
        </div>
        {mapping.held_by.clone().map(|h| view! {
            <div class="message held">
                <h2>"Held by another instance"</h2>
                <p>{format!("{h} holds this mapping's lease and acts for it. This instance only watches: it takes over by itself when the other lets go (stops, or loses its connection to the source). Send commands to that instance's dashboard or API.")}</p>
            </div>
        })}
        {(!errors.is_empty()).then(|| view! {
            <div class="message problem">
                <h2>"Errors (retried automatically)"</h2>
                <ul>{errors.into_iter().map(|e| view! { <li>{e}</li> }).collect_view()}</ul>
            </div>
        })}
        {(!findings.is_empty()).then(|| view! { <Findings findings mapping=mapping.name.clone() state/> }.into_any())}
    }
}

#[component]
fn Findings(findings: Vec<Finding>, mapping: String, state: AppState) -> impl IntoView {
    // Drift the tool can resolve by itself gets a button, and what the tool stopped retrying by
    // itself a Retry button.
    let resync = findings.iter().any(|f| f.resolvable_by_resync).then(|| {
        command_button(
            &state,
            &mapping,
            "resync",
            "Apply safe schema changes",
            " Creates the tables, columns and other objects added on the source; lists the rest.",
        )
    });
    let retry = findings
        .iter()
        .any(|f| matches!(f.code, Code::CopyFailing | Code::SchemaObjectFailed))
        .then(|| {
            command_button(
                &state,
                &mapping,
                "retry",
                "Retry",
                " Once the cause is fixed: the copy, or the schema objects the destination \
                 refused, are tried again at the next tick.",
            )
        });
    view! {
        <div class="message findings">
            <h2>"Findings"</h2>
            <ul>
                {findings.into_iter().map(|f| {
                    let class = if f.is_blocking() { "blocking" } else { "warning" };
                    let kind = if f.is_blocking() { "Blocking" } else { "Warning" };
                    view! {
                        <li class=class>
                            <b>{kind}" ("{f.code.as_str()}"): "</b>{f.message}
                            <br/><span class="fix">"Fix: "{f.fix}</span>
                        </li>
                    }
                }).collect_view()}
            </ul>
            {resync}
            {retry}
        </div>
    }
}

/// A checked `POST /mappings/{mapping}/{command}` form with one button and a hint.
fn command_button(
    state: &AppState,
    mapping: &str,
    command: &str,
    label: &'static str,
    hint: &'static str,
) -> AnyView {
    let action = format!("/mappings/{mapping}/{command}");
    let fields = super::complete::command_fields(state);
    view! {
        <form class="resync" method="post" action=action>
            {fields}
            <button type="submit">{label}</button>
            <span class="hint">{hint}</span>
        </form>
    }
    .into_any()
}

/// Enabled only when the mapping is cutover ready; otherwise says why not.
#[component]
fn CompleteButton(mapping: MappingStatus) -> impl IntoView {
    let action = format!("/mappings/{}/complete", mapping.name);
    match mapping.phase {
        Phase::CutoverReady => view! {
            <form class="complete" method="get" action=action>
                <button class="danger" type="submit">"Mark complete…"</button>
                <p class="hint">"Asks for confirmation first."</p>
            </form>
        }
        .into_any(),
        Phase::Completed => view! {
            <div class="complete">
                <p class="hint">"Completed: subscriptions detached, slots and publications dropped."</p>
            </div>
        }
        .into_any(),
        Phase::Completing => view! {
            <div class="complete">
                <p class="hint">"Completing: mark complete has begun; the tool drops the remaining slots and publications on every tick."</p>
            </div>
        }
        .into_any(),
        phase => view! {
            <div class="complete">
                <button class="danger" type="button" disabled=true>"Mark complete…"</button>
                <p class="hint">
                    {format!(
                        "Available once the light is green; the mapping is {} ({} of {} databases ready).",
                        phase.label(),
                        format::databases_done(&mapping),
                        mapping.databases.len()
                    )}
                </p>
            </div>
        }
        .into_any(),
    }
}
