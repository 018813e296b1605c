//! `GET /metrics`: the snapshot in Prometheus (OpenMetrics) text, built at each scrape from the
//! latest snapshot with `prometheus-client`, so it can never disagree with `/api/status`.

use std::sync::atomic::AtomicU64;
use std::time::UNIX_EPOCH;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use migrator_core::phase::Phase;
use migrator_core::status::{Snapshot, TableState, VerifyOutcome};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Db {
    mapping: String,
    database: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DbPhase {
    mapping: String,
    database: String,
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DbTableState {
    mapping: String,
    database: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Mapping {
    mapping: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let snapshot = state.status.borrow().clone();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        render(&snapshot),
    )
}

/// The snapshot as OpenMetrics text.
pub fn render(snapshot: &Snapshot) -> String {
    let mut registry = Registry::with_prefix("pgmigrator");
    let phase = Family::<DbPhase, Gauge>::default();
    let lag_bytes = Family::<Db, Gauge>::default();
    let lag_seconds = Family::<Db, FloatGauge>::default();
    let wal_rate = Family::<Db, FloatGauge>::default();
    let apply_rate = Family::<Db, FloatGauge>::default();
    let tables = Family::<DbTableState, Gauge>::default();
    let copied = Family::<Db, Gauge>::default();
    let total = Family::<Db, Gauge>::default();
    let ready = Family::<Db, Gauge>::default();
    let mapping_ready = Family::<Mapping, Gauge>::default();
    let last_tick = Family::<Mapping, FloatGauge>::default();
    let copy_rate = Family::<Mapping, FloatGauge>::default();
    let copy_limit = Family::<Mapping, FloatGauge>::default();
    let lease_held = Family::<Mapping, Gauge>::default();
    let verify_running = Family::<Mapping, Gauge>::default();
    let verify_ranges = Family::<Mapping, Gauge>::default();
    let verify_checked = Family::<Mapping, Gauge>::default();
    let verify_differing = Family::<Mapping, Gauge>::default();
    let verify_unsettled = Family::<Mapping, Gauge>::default();
    let verify_rows = Family::<Mapping, Gauge>::default();
    registry.register(
        "database_phase",
        "Phase of each database (1 for the current phase)",
        phase.clone(),
    );
    registry.register(
        "lag_bytes",
        "Source WAL not yet confirmed by the destination",
        lag_bytes.clone(),
    );
    registry.register(
        "lag_seconds",
        "How far the destination's apply trails, in seconds",
        lag_seconds.clone(),
    );
    registry.register(
        "source_wal_bytes_per_second",
        "How fast the source writes WAL while the subscription streams (over apply_behind_after)",
        wal_rate.clone(),
    );
    registry.register(
        "apply_bytes_per_second",
        "How fast the destination applies it: the slot's confirmed position (over apply_behind_after)",
        apply_rate.clone(),
    );
    registry.register("tables", "Tables by initial-sync state", tables.clone());
    registry.register(
        "copied_bytes",
        "Bytes of table data copied so far",
        copied.clone(),
    );
    registry.register(
        "table_bytes",
        "Bytes of table data on the source",
        total.clone(),
    );
    registry.register(
        "database_cutover_ready",
        "1 when the database is cutover ready",
        ready.clone(),
    );
    registry.register(
        "mapping_cutover_ready",
        "1 when every database of the mapping is cutover ready",
        mapping_ready.clone(),
    );
    registry.register(
        "last_tick_timestamp_seconds",
        "When the mapping last checked its instances",
        last_tick.clone(),
    );
    registry.register(
        "copy_read_bytes_per_second",
        "Bytes per second the initial copy reads from the source (last 3 s)",
        copy_rate.clone(),
    );
    registry.register(
        "copy_limit_bytes_per_second",
        "The copy rate limit in force, the health guard's cap included (0 = none)",
        copy_limit.clone(),
    );
    registry.register(
        "mapping_lease_held",
        "1 when this instance holds the mapping's lease and acts for it",
        lease_held.clone(),
    );
    // The last verification started on this instance, running or finished; absent before the
    // first one. Not `_total`: OpenMetrics keeps that suffix for counters.
    registry.register(
        "verify_running",
        "1 while a verification of the mapping's data runs on this instance",
        verify_running.clone(),
    );
    registry.register(
        "verify_ranges_planned",
        "Key ranges the last verification compares, over every table",
        verify_ranges.clone(),
    );
    registry.register(
        "verify_ranges_checked",
        "Key ranges the last verification has compared so far",
        verify_checked.clone(),
    );
    registry.register(
        "verify_ranges_differing",
        "Key ranges the last verification found different on the destination",
        verify_differing.clone(),
    );
    registry.register(
        "verify_ranges_unsettled",
        "Key ranges whose rows kept changing during the last verification (not proven)",
        verify_unsettled.clone(),
    );
    registry.register(
        "verify_rows",
        "Source rows the last verification has compared so far",
        verify_rows.clone(),
    );
    for m in &snapshot.mappings {
        let mapping = Mapping {
            mapping: m.name.clone(),
        };
        lease_held
            .get_or_create(&mapping)
            .set(i64::from(m.acting_here));
        copy_rate
            .get_or_create(&mapping)
            .set(m.copy.bytes_per_second);
        let running = m
            .verify
            .as_ref()
            .is_some_and(|v| v.outcome() == VerifyOutcome::Running);
        verify_running
            .get_or_create(&mapping)
            .set(i64::from(running));
        if let Some(totals) = m.verify.as_ref().map(|v| v.totals()) {
            for (family, value) in [
                (&verify_ranges, totals.ranges),
                (&verify_checked, totals.checked),
                (&verify_differing, totals.differing),
                (&verify_unsettled, totals.unsettled),
                (&verify_rows, totals.rows),
            ] {
                family
                    .get_or_create(&mapping)
                    .set(i64::try_from(value).unwrap_or(i64::MAX));
            }
        }
        let limit = m.copy.in_force_mb_per_s().unwrap_or(0.0);
        copy_limit.get_or_create(&mapping).set(limit * 1_048_576.0);
        mapping_ready
            .get_or_create(&mapping)
            .set(i64::from(m.phase == Phase::CutoverReady));
        if let Some(t) = m.last_tick.and_then(|t| t.duration_since(UNIX_EPOCH).ok()) {
            last_tick.get_or_create(&mapping).set(t.as_secs_f64());
        }
        for d in &m.databases {
            let db = Db {
                mapping: m.name.clone(),
                database: d.name.clone(),
            };
            phase
                .get_or_create(&DbPhase {
                    mapping: m.name.clone(),
                    database: d.name.clone(),
                    phase: format!("{:?}", d.phase).to_lowercase(),
                })
                .set(1);
            if let Some(lag) = d.lag {
                lag_bytes.get_or_create(&db).set(lag.bytes as i64);
                lag_seconds.get_or_create(&db).set(lag.seconds);
            }
            if let Some(rates) = d.rates {
                let per_second = |mb_per_min: f64| mb_per_min * 1_048_576.0 / 60.0;
                wal_rate
                    .get_or_create(&db)
                    .set(per_second(rates.wal_mb_per_min));
                apply_rate
                    .get_or_create(&db)
                    .set(per_second(rates.apply_mb_per_min));
            }
            for state in [
                TableState::Init,
                TableState::Copying,
                TableState::FinishedCopy,
                TableState::Synchronized,
                TableState::Ready,
            ] {
                let count = d.tables.iter().filter(|t| t.state == state).count();
                tables
                    .get_or_create(&DbTableState {
                        mapping: m.name.clone(),
                        database: d.name.clone(),
                        state: format!("{state:?}").to_lowercase(),
                    })
                    .set(count as i64);
            }
            copied.get_or_create(&db).set(d.bytes_copied() as i64);
            total.get_or_create(&db).set(d.bytes_total() as i64);
            ready
                .get_or_create(&db)
                .set(i64::from(d.phase == Phase::CutoverReady));
        }
    }
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)
        .expect("writing to a String cannot fail");
    text
}
