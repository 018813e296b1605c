use std::time::{Duration, SystemTime};

use leptos::prelude::*;
use migrator_core::status::MappingStatus;

use super::super::format;
use crate::LagSample;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 180.0;
/// Room for the axis labels.
const LEFT: f64 = 64.0;
const BOTTOM: f64 = 22.0;

/// Lag over the last hour, in bytes and in time, as inline SVG charts.
#[component]
pub fn Metrics(mapping: MappingStatus, samples: Vec<LagSample>, window: Duration) -> impl IntoView {
    let now = SystemTime::now();
    let current = mapping.lag().map(|l| (l.bytes, l.seconds));
    let summary = match current {
        Some((bytes, seconds)) => format!(
            "Now: {} behind, {}.",
            format::mb(bytes),
            format::duration(seconds)
        ),
        None => {
            "No lag reported now (replication is not set up, or the mapping is completed).".into()
        }
    };
    let minutes = window.as_secs() / 60;
    let charts = if samples.is_empty() {
        view! { <p class="empty">"No lag sample yet: the history starts when the dashboard does, one sample every 5 s."</p> }.into_any()
    } else {
        let mb: Vec<(f64, f64)> = points(&samples, now, window, |s| s.bytes as f64 / 1_048_576.0);
        let secs: Vec<(f64, f64)> = points(&samples, now, window, |s| s.seconds);
        view! {
            <Chart title="Lag (MB, all databases)" unit="MB" points=mb minutes/>
            <Chart title="Lag (seconds, slowest database)" unit="s" points=secs minutes/>
        }
        .into_any()
    };
    view! {
        <p>{summary}" Prometheus figures are at "<a href="/metrics">"/metrics"</a>"."</p>
        {charts}
    }
}

/// (x in 0..1 across the window, value) for each sample inside the window.
fn points(
    samples: &[LagSample],
    now: SystemTime,
    window: Duration,
    value: impl Fn(&LagSample) -> f64,
) -> Vec<(f64, f64)> {
    samples
        .iter()
        .filter_map(|s| {
            let age = now.duration_since(s.at).unwrap_or_default();
            (age <= window).then(|| (1.0 - age.as_secs_f64() / window.as_secs_f64(), value(s)))
        })
        .collect()
}

#[component]
fn Chart(
    title: &'static str,
    unit: &'static str,
    points: Vec<(f64, f64)>,
    minutes: u64,
) -> impl IntoView {
    let top = points.iter().map(|p| p.1).fold(0.0, f64::max);
    let scale = if top > 0.0 { top * 1.1 } else { 1.0 };
    let plot_w = WIDTH - LEFT;
    let plot_h = HEIGHT - BOTTOM;
    let line: String = points
        .iter()
        .map(|(x, v)| {
            format!(
                "{:.1},{:.1}",
                LEFT + x * plot_w,
                plot_h - v / scale * plot_h
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    let label = |v: f64| {
        if unit == "MB" {
            format!("{v:.1} MB")
        } else {
            format!("{v:.1} s")
        }
    };
    view! {
        <figure class="chart">
            <figcaption>{title}</figcaption>
            <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label=title>
                <line class="axis" x1=LEFT y1="0" x2=LEFT y2=plot_h></line>
                <line class="axis" x1=LEFT y1=plot_h x2=WIDTH y2=plot_h></line>
                <line class="grid" x1=LEFT y1=plot_h / 2.0 x2=WIDTH y2=plot_h / 2.0></line>
                <text class="tick" x=LEFT - 6.0 y="12" text-anchor="end">{label(scale)}</text>
                <text class="tick" x=LEFT - 6.0 y=plot_h / 2.0 + 4.0 text-anchor="end">{label(scale / 2.0)}</text>
                <text class="tick" x=LEFT - 6.0 y=plot_h text-anchor="end">{label(0.0)}</text>
                <text class="tick" x=LEFT y=HEIGHT - 4.0>{format!("−{minutes} min")}</text>
                <text class="tick" x=LEFT + plot_w / 2.0 y=HEIGHT - 4.0 text-anchor="middle">{format!("−{} min", minutes / 2)}</text>
                <text class="tick" x=WIDTH - 2.0 y=HEIGHT - 4.0 text-anchor="end">"now"</text>
                <polyline class="series" points=line></polyline>
            </svg>
        </figure>
    }
}
