//! `/`: every mapping as a card with its light.

use axum::extract::State;
use axum::response::Html;
use leptos::prelude::*;
use migrator_core::status::MappingStatus;

use super::format;
use super::status_bar::StatusBar;
use crate::AppState;

pub async fn page(State(state): State<AppState>) -> Html<String> {
    let snapshot = state.status.borrow().clone();
    let stale_after = state.stale_after.as_secs_f64();
    let cards = snapshot
        .mappings
        .iter()
        .map(|m| view! { <MappingCard mapping=m.clone()/> })
        .collect_view();
    let empty = snapshot.mappings.is_empty().then(|| {
        view! {
            <p class="message">
                "No mapping reported yet. Mappings are configured as [mappings.NAME] in the \
                 configuration file or with MIGRATOR__MAPPINGS__NAME__... variables."
            </p>
        }
    });
    let body = view! {
        <StatusBar snapshot=snapshot.clone() stale_after/>
        <h1>"Mappings"</h1>
        {empty}
        <div class="grid">{cards}</div>
    };
    super::document("Mappings".into(), Some(state.refresh.as_secs()), body)
}

#[component]
fn MappingCard(mapping: MappingStatus) -> impl IntoView {
    let (light_class, light_text) = format::light(&mapping);
    let light_label = light_text.clone();
    let href = format!("/mappings/{}", mapping.name);
    let done = format::databases_done(&mapping);
    let total = mapping.databases.len();
    let (lag_mb, lag_time) = match format::mapping_lag(&mapping) {
        Some((bytes, seconds)) => (format::mb(bytes), format::duration(seconds)),
        None => ("–".to_owned(), "–".to_owned()),
    };
    let copied: u64 = mapping.databases.iter().map(|d| d.bytes_copied()).sum();
    let size: u64 = mapping.databases.iter().map(|d| d.bytes_total()).sum();
    let problem = mapping
        .findings
        .iter()
        .chain(mapping.databases.iter().flat_map(|d| d.findings.iter()))
        .find(|f| f.is_blocking())
        .map(|f| f.message.clone())
        .or_else(|| mapping.last_error.clone())
        .or_else(|| mapping.databases.iter().find_map(|d| d.last_error.clone()));
    view! {
        <article class=format!("card {light_class}") data-mapping=mapping.name.clone()>
            <a class="card-link" href=href.clone()>
                <div class=format!("light {light_class}") role="img" aria-label=light_label>
                    <span class="lamp"></span>
                    <span class="light-text">{light_text}</span>
                </div>
                <h2>{mapping.name.clone()}</h2>
            </a>
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
                <div>
                    <dt>"Copied"</dt>
                    <dd>{format!("{} of {} ({} %)", format::mb(copied), format::mb(size), format::percent(copied, size))}</dd>
                </div>
            </dl>
            {problem.map(|p| view! { <p class="problem-text">{p}</p> })}
            <a class="details" href=href>"Details →"</a>
        </article>
    }
}
