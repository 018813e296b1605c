//! A verification as text: what the `verify` command prints and mark complete reports.

use crate::status::{VerifyOutcome, VerifyStatus, VerifyTable};

/// The verdict in a few words.
pub fn verdict(outcome: VerifyOutcome) -> &'static str {
    match outcome {
        VerifyOutcome::Running => "running",
        VerifyOutcome::Equal => "every table equal",
        VerifyOutcome::Differences => "DIFFERENCES FOUND",
        VerifyOutcome::Unsettled => {
            "no difference found, but some rows were changing and are not proven"
        }
        VerifyOutcome::Failed => "could not compare everything",
    }
}

/// The first line: mapping, mode, verdict and totals.
pub fn summary(mapping: &str, status: &VerifyStatus) -> String {
    let t = status.totals();
    let tables = status.tables().count();
    format!(
        "verify ({}) of mapping {mapping}: {}: {} database(s), {tables} table(s), {} of {} range(s) checked, {} row(s), {} differing, {} not settled, in {:.1} s",
        status.mode,
        verdict(status.outcome()),
        status.databases.len(),
        t.checked,
        t.ranges,
        t.rows,
        t.differing,
        t.unsettled,
        status.elapsed().as_secs_f64()
    )
}

fn table_line(t: &VerifyTable) -> String {
    let how = if t.key.is_empty() {
        "whole".to_owned()
    } else {
        format!("{} range(s) by ({})", t.ranges, t.key.join(", "))
    };
    let at = match (&t.first_lsn, &t.last_lsn) {
        (Some(a), Some(b)) if a != b => format!(", read at source WAL {a} .. {b}"),
        (Some(a), _) => format!(", read at source WAL {a}"),
        _ => String::new(),
    };
    let state = if let Some(e) = &t.error {
        format!("NOT COMPARED: {e}")
    } else if !t.differing.is_empty() {
        format!("DIFFERS in {} range(s)", t.differing.len())
    } else if !t.unsettled.is_empty() {
        format!("{} range(s) not settled", t.unsettled.len())
    } else if t.checked == t.ranges && t.ranges > 0 {
        "equal".to_owned()
    } else if t.ranges == 0 {
        "not compared".to_owned()
    } else {
        format!("{} of {} range(s) checked", t.checked, t.ranges)
    };
    let note = t
        .note
        .as_ref()
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    format!(
        "    {}: {state}: {} row(s), {how}{at}{note}",
        t.table, t.rows
    )
}

/// Every line of the report: the summary, then each database and table, then each range that
/// differs or is not settled, with its rows and a query to look at it.
pub fn lines(mapping: &str, status: &VerifyStatus) -> Vec<String> {
    let mut out = vec![summary(mapping, status)];
    if let Some(e) = &status.error {
        out.push(format!("  error: {e}"));
    }
    for db in &status.databases {
        out.push(format!("  database {:?}:", db.name));
        if let Some(e) = &db.error {
            out.push(format!("    NOT COMPARED: {e}"));
        }
        for t in &db.tables {
            out.push(table_line(t));
            for (label, ranges) in [("differs", &t.differing), ("not settled", &t.unsettled)] {
                for r in ranges {
                    out.push(format!(
                        "      {label}: {}: {} row(s) on the source, {} on the destination",
                        r.condition.as_deref().unwrap_or("the whole table"),
                        r.source_rows,
                        r.destination_rows
                    ));
                    for row in &r.rows {
                        out.push(format!("        {row}"));
                    }
                    if r.more_rows > 0 {
                        out.push(format!("        ... and {} more row(s)", r.more_rows));
                    }
                    out.push(format!("        look on both sides: {}", r.inspect));
                }
            }
        }
    }
    out
}
