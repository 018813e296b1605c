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
        .map(|m| view! { <MappingCard card=Card::of(m)/> })
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
        <StatusBar snapshot=snapshot.clone() stale_after open_commands=state.open_commands_warning.clone()/>
        <h1>"Mappings"</h1>
        {empty}
        <div class="grid">{cards}</div>
    };
    super::document("Mappings".into(), Some(state.refresh.as_secs()), body)
}

/// What a card shows, taken from a mapping without copying its databases.
struct Card {
    name: String,
    source: String,
    destination: String,
    phase: &'static str,
    light_class: &'static str,
    light_text: String,
    done: usize,
    total: usize,
    lag: Option<(u64, f64)>,
    copied: u64,
    size: u64,
    problem: Option<String>,
}

impl Card {
    fn of(mapping: &MappingStatus) -> Card {
        let (light_class, light_text) = format::light(mapping);
        Card {
            name: mapping.name.clone(),
            source: mapping.source.clone(),
            destination: mapping.destination.clone(),
            phase: mapping.phase.label(),
            light_class,
            light_text,
            done: format::databases_done(mapping),
            total: mapping.databases.len(),
            lag: mapping.lag().map(|l| (l.bytes, l.seconds)),
            copied: mapping.databases.iter().map(|d| d.bytes_copied()).sum(),
            size: mapping.databases.iter().map(|d| d.bytes_total()).sum(),
            problem: mapping
                .held_by
                .as_ref()
                .map(|h| format!("another instance acts for this mapping: {h}; this one watches and takes over when it lets go"))
                .or_else(|| mapping
                .findings
                .iter()
                .chain(mapping.databases.iter().flat_map(|d| d.findings.iter()))
                .find(|f| f.is_blocking())
                .map(|f| f.message.clone())
                .or_else(|| mapping.last_error.clone())
                .or_else(|| mapping.databases.iter().find_map(|d| d.last_error.clone()))),
        }
    }
}

#[component]
fn MappingCard(card: Card) -> impl IntoView {
    let Card {
        name,
        source,
        destination,
        phase,
        light_class,
        light_text,
        done,
        total,
        lag,
        copied,
        size,
        problem,
    } = card;
    let light_label = light_text.clone();
    let href = format!("/mappings/{name}");
    let data_mapping = name.clone();
    let (lag_mb, lag_time) = match lag {
        Some((bytes, seconds)) => (format::mb(bytes), format::duration(seconds)),
        None => ("–".to_owned(), "–".to_owned()),
    };
    view! {
        <article class=format!("card {light_class}") data-mapping=data_mapping>
            <a class="card-link" href=href.clone()>
                <div class=format!("light {light_class}") role="img" aria-label=light_label>
                    <span class="lamp"></span>
                    <span class="light-text">{light_text}</span>
                </div>
                <h2>{name}</h2>
            </a>
            <p class="route">
                <span>{source}</span>
                <span class="arrow">" → "</span>
                <span>{destination}</span>
            </p>
            <dl class="facts">
                <div><dt>"Phase"</dt><dd>{phase}</dd></div>
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
