//! Page render time with 50 mappings x 20 databases (12 tables each): the grid, a mapping's
//! Databases tab and its Tables tab, through the whole router (`oneshot`), as a request would.
//! Prints p50/p99 and writes them to docs/BENCHMARKS.md.
//!
//!     cargo bench -p web-ui --bench render

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../../benches/report.rs"]
mod report;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::{database, harness, send, snapshot};
use migrator_core::phase::Phase;
use migrator_core::status::{Snapshot, TableState, TableStatus};

const MAPPINGS: usize = 50;
const DATABASES: usize = 20;
const TABLES: usize = 12;
const ROUNDS: usize = 300;

fn big_snapshot() -> Snapshot {
    let template = snapshot(Phase::InitialSync, Some(SystemTime::now()));
    let phases = [
        Phase::InitialSync,
        Phase::CatchUp,
        Phase::CutoverReady,
        Phase::Problematic,
        Phase::Completed,
    ];
    let mappings = (0..MAPPINGS)
        .map(|m| {
            let mut mapping = template.mappings[0].clone();
            mapping.name = format!("mapping{m:02}");
            mapping.phase = phases[m % phases.len()];
            mapping.databases = (0..DATABASES)
                .map(|d| {
                    let mut db = database(&format!("database_{d:02}"), mapping.phase);
                    db.tables = (0..TABLES)
                        .map(|t| TableStatus {
                            schema: "public".into(),
                            table: format!("table_{t:02}"),
                            state: if t % 3 == 0 {
                                TableState::Copying
                            } else {
                                TableState::Ready
                            },
                            bytes_copied: 40_000_000 * t as u64,
                            bytes_total: 50_000_000 * t as u64,
                        })
                        .collect();
                    db
                })
                .collect();
            mapping
        })
        .collect();
    Snapshot {
        generated_at: Some(SystemTime::now()),
        mappings,
    }
}

struct Figures {
    page: &'static str,
    p50: Duration,
    p99: Duration,
    bytes: usize,
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let h = harness(Snapshot::default(), None);
    h.status.send_replace(Arc::new(big_snapshot()));
    let router = web_ui::app(h.state.clone());
    let pages = [
        ("grid `/` (50 mappings)", "/"),
        (
            "mapping, Databases tab (20 databases)",
            "/mappings/mapping07",
        ),
        (
            "mapping, Tables tab (240 tables)",
            "/mappings/mapping07?tab=tables",
        ),
    ];
    let mut figures = Vec::new();
    for (page, uri) in pages {
        let mut times = Vec::with_capacity(ROUNDS);
        let mut bytes = 0;
        for round in 0..ROUNDS + 20 {
            let started = Instant::now();
            let (code, _, body) = runtime.block_on(send(&router, common::get(uri)));
            let took = started.elapsed();
            assert!(code.is_success(), "{uri}: {code}");
            bytes = body.len();
            if round >= 20 {
                times.push(took);
            }
        }
        times.sort();
        let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        let f = Figures {
            page,
            p50: at(0.50),
            p99: at(0.99),
            bytes,
        };
        println!(
            "{:<40} p50 {:>8.2} ms   p99 {:>8.2} ms   {:>7} KB",
            f.page,
            f.p50.as_secs_f64() * 1000.0,
            f.p99.as_secs_f64() * 1000.0,
            f.bytes / 1024
        );
        figures.push(f);
    }
    write_report(&figures);
}

/// Rewrites the render section of docs/BENCHMARKS.md.
fn write_report(figures: &[Figures]) {
    let mut section = format!(
        "## Dashboard render time\n\n`cargo bench -p web-ui --bench render` on {} ({}), \
         release build: {MAPPINGS} mappings x {DATABASES} databases x {TABLES} tables in the snapshot; each \
         page requested {ROUNDS} times through the whole router (routing, leptos SSR, security \
         headers), one at a time, after 20 warm-up requests.\n\n\
         | page | p50 | p99 | HTML size |\n|---|---:|---:|---:|\n",
        report::machine(),
        humantime::format_rfc3339_seconds(SystemTime::now())
    );
    for f in figures {
        section.push_str(&format!(
            "| {} | {:.2} ms | {:.2} ms | {} KB |\n",
            f.page,
            f.p50.as_secs_f64() * 1000.0,
            f.p99.as_secs_f64() * 1000.0,
            f.bytes / 1024
        ));
    }
    report::write_section(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")),
        "render",
        &section,
    );
}
