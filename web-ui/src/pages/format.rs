//! How numbers, times and phases read on the pages.

use std::time::SystemTime;

use migrator_core::phase::Phase;
use migrator_core::status::{MappingStatus, TableState};

/// `12.3 MB` (MiB, as PostgreSQL's pg_size_pretty counts).
pub fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_048_576.0)
}

/// `0.4 s`, `12 s`, `3 min 20 s`, `2 h 5 min`.
pub fn duration(seconds: f64) -> String {
    if seconds < 10.0 {
        return format!("{seconds:.1} s");
    }
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

/// `2026-11-23 14:05:09 UTC`.
pub fn time(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at)
        .to_string()
        .replace('T', " ")
        .replace('Z', " UTC")
}

/// Seconds from `at` to now (0 if `at` is in the future).
pub fn age(at: SystemTime) -> f64 {
    SystemTime::now()
        .duration_since(at)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `text` as one segment of a URL path: every byte but letters, digits and `-._~`
/// percent-encoded (a database name may hold `/`, `?`, `#`, spaces or any Unicode).
pub fn path_segment(text: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, KEEP).to_string()
}

/// Whole percent, rounded down so that 100 % means done.
pub fn percent(done: u64, total: u64) -> u64 {
    (done.min(total) * 100).checked_div(total).unwrap_or(100)
}

/// The light of a mapping: its CSS class and its words.
pub fn light(m: &MappingStatus) -> (&'static str, String) {
    let has_error = m.last_error.is_some() || m.databases.iter().any(|d| d.last_error.is_some());
    if m.held_by.is_some() {
        return ("progress", "HELD BY ANOTHER INSTANCE".into());
    }
    match m.phase {
        Phase::Completed => ("completed", "COMPLETED".into()),
        Phase::CutoverReady if !has_error => ("ready", "CUTOVER READY".into()),
        Phase::Problematic => ("problem", "PROBLEM".into()),
        _ if has_error => ("problem", "ERROR, RETRYING".into()),
        phase => ("progress", phase.label().to_uppercase()),
    }
}

/// The CSS class of a database's phase badge.
pub fn phase_class(phase: Phase) -> &'static str {
    match phase {
        Phase::Completed => "badge completed",
        Phase::CutoverReady => "badge ready",
        Phase::Problematic => "badge problem",
        _ => "badge progress",
    }
}

pub fn table_state(state: TableState) -> &'static str {
    match state {
        TableState::Init => "waiting",
        TableState::Copying => "copying",
        TableState::FinishedCopy => "copy finished",
        TableState::Synchronized => "synchronized",
        TableState::Ready => "ready",
        TableState::Unknown => "not in subscription",
    }
}

/// Databases at cutover ready or completed.
pub fn databases_done(m: &MappingStatus) -> usize {
    m.databases
        .iter()
        .filter(|d| matches!(d.phase, Phase::CutoverReady | Phase::Completed))
        .count()
}

/// The WAL forecast in one line: what our slots hold, how fast it grows, and when the source's
/// `max_slot_wal_keep_size` would be reached.
pub fn wal_forecast(wal: Option<&migrator_core::status::WalForecast>) -> String {
    let Some(wal) = wal else {
        return "–".into();
    };
    let rate = |r: Option<f64>| r.map_or("…".to_owned(), |r| format!("{r:.1} MB/min"));
    let mut text = format!(
        "slots hold {:.1} MB, growing {}; the source writes {}",
        wal.retained_mb,
        rate(wal.retained_mb_per_min),
        rate(wal.generated_mb_per_min)
    );
    match wal.limit_mb {
        None => text.push_str("; no max_slot_wal_keep_size (the disk is the limit)"),
        Some(limit) => {
            let at_rate = wal
                .minutes_to_limit
                .map_or("not growing towards it".to_owned(), |m| {
                    format!("reached in {} at this rate", duration(m * 60.0))
                });
            let stalled = wal.minutes_to_limit_if_stalled.map_or(String::new(), |m| {
                format!("; in {} if replication stalls", duration(m * 60.0))
            });
            text.push_str(&format!("; limit {limit:.0} MB: {at_rate}{stalled}"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_say_them() {
        assert_eq!(duration(0.44), "0.4 s");
        assert_eq!(duration(42.0), "42 s");
        assert_eq!(duration(200.0), "3 min 20 s");
        assert_eq!(duration(7500.0), "2 h 5 min");
    }

    #[test]
    fn percent_is_never_100_before_done() {
        assert_eq!(percent(999, 1000), 99);
        assert_eq!(percent(1000, 1000), 100);
        assert_eq!(percent(0, 0), 100);
        assert_eq!(percent(2000, 1000), 100);
    }

    #[test]
    fn sizes_in_mb() {
        assert_eq!(mb(33_764_147), "32.2 MB");
    }

    #[test]
    fn the_wal_forecast_reads_as_one_line() {
        use migrator_core::status::WalForecast;
        assert_eq!(super::wal_forecast(None), "–");
        let mut wal = WalForecast {
            generated_mb_per_min: Some(120.0),
            retained_mb: 5.0,
            retained_mb_per_min: Some(0.0),
            limit_mb: None,
            minutes_to_limit: None,
            minutes_to_limit_if_stalled: None,
        };
        assert_eq!(
            super::wal_forecast(Some(&wal)),
            "slots hold 5.0 MB, growing 0.0 MB/min; the source writes 120.0 MB/min; no max_slot_wal_keep_size (the disk is the limit)"
        );
        wal.limit_mb = Some(4096.0);
        wal.minutes_to_limit_if_stalled = Some(34.0);
        let text = super::wal_forecast(Some(&wal));
        assert!(
            text.ends_with(
                "limit 4096 MB: not growing towards it; in 34 min 0 s if replication stalls"
            ),
            "{text}"
        );
    }
}
