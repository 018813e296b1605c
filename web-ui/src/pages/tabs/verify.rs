use leptos::prelude::*;
use migrator_core::status::{
    MappingStatus, RangeReport, VerifyDatabase, VerifyMode, VerifyOutcome, VerifyStatus,
    VerifyTable,
};
use migrator_core::verify::report::verdict;

use super::super::format;
use super::DataTable;

/// The last verification started on this instance: its verdict, totals, each database's and
/// table's progress, and every range that differs or is not settled. Before the first one, what
/// a verification does.
#[component]
pub fn Verify(mapping: MappingStatus) -> impl IntoView {
    match mapping.verify {
        None => view! { <Intro/> }.into_any(),
        Some(status) => view! { <Report status/> }.into_any(),
    }
}

#[component]
fn Intro() -> impl IntoView {
    view! {
        <div class="verify-intro">
            <p class="empty">"No verification has run on this instance yet."</p>
            <p>
                "A verification compares every table on both sides, key range by key range: each \
                 server counts the rows of a range and sums a hash of each row (in any order), so \
                 only those two numbers per range cross the network. A range whose numbers differ \
                 is then looked at row by row. It only reads, under the copy's rate limit."
            </p>
            <p>
                <b>"Online"</b>" runs while writes to the source go on: a range that changed while \
                 it was read is read again once the destination has applied past that point; rows \
                 that keep changing are reported as not settled, never as differences. "
                <b>"Exact"</b>" is for once writes to the source have stopped: it waits for the lag \
                 to drain, then compares every range once."
            </p>
            <p>
                "Start one with "<b>"Verify data"</b>" at the top of this page (tick "
                <i>"exact (writes stopped)"</i>" once writes have stopped), with "
                <code>"POST /api/mappings/NAME/verify"</code>", or with "
                <code>"postgres-migrator verify NAME"</code>" (that one prints its result instead \
                 of showing it here)."
            </p>
        </div>
    }
}

/// The light's CSS class and words for an outcome.
fn light(outcome: VerifyOutcome) -> (&'static str, &'static str) {
    match outcome {
        VerifyOutcome::Equal => ("ready", "EQUAL"),
        VerifyOutcome::Differences => ("problem", "DIFFERENCES"),
        VerifyOutcome::Unsettled => ("unsettled", "NOT SETTLED"),
        VerifyOutcome::Running => ("neutral", "RUNNING"),
        VerifyOutcome::Failed => ("neutral", "FAILED"),
    }
}

fn mode(mode: VerifyMode) -> &'static str {
    match mode {
        VerifyMode::Online => "online (writes running)",
        VerifyMode::Exact => "exact (writes stopped)",
    }
}

fn scope(status: &VerifyStatus) -> String {
    match (&status.database, &status.table) {
        (None, None) => "every database and table".into(),
        (Some(d), None) => format!("database {d:?}"),
        (None, Some(t)) => format!("table {t}"),
        (Some(d), Some(t)) => format!("table {t} of database {d:?}"),
    }
}

#[component]
fn Report(status: VerifyStatus) -> impl IntoView {
    let outcome = status.outcome();
    let running = outcome == VerifyOutcome::Running;
    let (light_class, light_word) = light(outcome);
    let totals = status.totals();
    let elapsed = format::duration(status.elapsed().as_secs_f64());
    let (elapsed_label, elapsed) = if running {
        ("Running for", elapsed)
    } else {
        ("Took", elapsed)
    };
    let (mode, scope, started) = (
        mode(status.mode),
        scope(&status),
        format::time(status.started_at),
    );
    let error = status.error.clone().map(|e| {
        view! {
            <div class="message problem">
                <h2>"Stopped before comparing everything"</h2>
                <p>{e}</p>
            </div>
        }
    });
    let databases = status
        .databases
        .into_iter()
        .map(|d| view! { <Database database=d running/> })
        .collect_view();
    view! {
        <div class="verify-summary">
            <div class=format!("light {light_class}") role="img" aria-label=light_word>
                <span class="lamp"></span>
                <span class="light-text">{light_word}</span>
            </div>
            <div class="verify-facts">
                <p class="verdict">{verdict(outcome)}</p>
                <dl class="facts">
                    <div><dt>"Mode"</dt><dd>{mode}</dd></div>
                    <div><dt>"Scope"</dt><dd>{scope}</dd></div>
                    <div><dt>"Started"</dt><dd>{started}</dd></div>
                    <div><dt>{elapsed_label}</dt><dd>{elapsed}</dd></div>
                    <div><dt>"Ranges checked"</dt><dd>{format!("{} / {}", totals.checked, totals.ranges)}</dd></div>
                    <div><dt>"Rows compared"</dt><dd>{totals.rows}</dd></div>
                    <div><dt>"Differing ranges"</dt><dd>{totals.differing}</dd></div>
                    <div><dt>"Not settled"</dt><dd>{totals.unsettled}</dd></div>
                </dl>
                <RangeProgress checked=totals.checked ranges=totals.ranges/>
            </div>
        </div>
        {error}
        {databases}
    }
}

/// Ranges checked out of those planned; nothing planned yet is an empty bar.
#[component]
fn RangeProgress(checked: u64, ranges: u64) -> impl IntoView {
    let max = ranges.max(1);
    let value = checked.min(ranges);
    view! { <progress class="ranges" max=max.to_string() value=value.to_string()></progress> }
}

#[component]
fn Database(database: VerifyDatabase, running: bool) -> impl IntoView {
    let (checked, ranges, rows) = database.tables.iter().fold((0, 0, 0), |(c, r, n), t| {
        (c + t.checked, r + t.ranges, n + t.rows)
    });
    let heading = format!(
        "{} — {checked} of {ranges} ranges checked, {rows} rows, {} tables",
        database.name,
        database.tables.len()
    );
    let error = database.error.clone().map(|e| {
        view! { <p class="problem-text">"Not compared: "{e}</p> }
    });
    let name = database.name.clone();
    let rows_view = database
        .tables
        .iter()
        .cloned()
        .map(|t| view! { <TableRow table=t running/> })
        .collect_view();
    let ranges_view = database
        .tables
        .into_iter()
        .filter(|t| !t.differing.is_empty() || !t.unsettled.is_empty())
        .map(|t| view! { <TableRanges database=name.clone() table=t/> })
        .collect_view();
    view! {
        <h2>{heading}</h2>
        <RangeProgress checked ranges/>
        {error}
        <DataTable headers=&["Table", "Key", "Ranges checked", "Rows", "Read at (source WAL)", "Result", "Note"]>
            {rows_view}
        </DataTable>
        {ranges_view}
    }
}

/// Where on the source a table was read: one WAL position, or the first and the last.
fn read_at(table: &VerifyTable) -> String {
    match (&table.first_lsn, &table.last_lsn) {
        (Some(a), Some(b)) if a != b => format!("{a} … {b}"),
        (Some(a), _) | (None, Some(a)) => a.clone(),
        (None, None) => "–".into(),
    }
}

/// A table's result as a badge, and the error that kept it from being compared.
fn result(table: &VerifyTable, running: bool) -> AnyView {
    let (class, text) = if table.error.is_some() {
        ("badge problem", "not compared".to_owned())
    } else if !table.differing.is_empty() {
        (
            "badge problem",
            format!("differs in {} range(s)", table.differing.len()),
        )
    } else if !table.unsettled.is_empty() {
        (
            "badge progress",
            format!("{} range(s) not settled", table.unsettled.len()),
        )
    } else if table.ranges > 0 && table.checked >= table.ranges {
        ("badge ready", "equal".to_owned())
    } else if running {
        ("badge neutral", "checking".to_owned())
    } else {
        ("badge neutral", "not finished".to_owned())
    };
    let error = table
        .error
        .clone()
        .map(|e| view! { <br/><span class="problem-text">{e}</span> });
    view! { <span class=class>{text}</span>{error} }.into_any()
}

#[component]
fn TableRow(table: VerifyTable, running: bool) -> impl IntoView {
    let key = if table.key.is_empty() {
        view! { <span class="note">"compared whole"</span> }.into_any()
    } else {
        view! { <code>{table.key.join(", ")}</code> }.into_any()
    };
    view! {
        <tr>
            <td class="name">{table.table.clone()}</td>
            <td>{key}</td>
            <td class="num">
                {format!("{} / {}", table.checked, table.ranges)}
                <RangeProgress checked=table.checked ranges=table.ranges/>
            </td>
            <td class="num">{table.rows}</td>
            <td class="nowrap"><code>{read_at(&table)}</code></td>
            <td>{result(&table, running)}</td>
            <td>{table.note.clone()}</td>
        </tr>
    }
}

/// Every range of a table that differs or is not settled.
#[component]
fn TableRanges(database: String, table: VerifyTable) -> impl IntoView {
    let heading = format!("{database:?}: {}", table.table);
    let differing = table
        .differing
        .into_iter()
        .map(|r| view! { <Range range=r differs=true/> })
        .collect_view();
    let unsettled = table
        .unsettled
        .into_iter()
        .map(|r| view! { <Range range=r differs=false/> })
        .collect_view();
    view! {
        <section class="verify-ranges">
            <h3>{heading}</h3>
            {differing}
            {unsettled}
        </section>
    }
}

#[component]
fn Range(range: RangeReport, differs: bool) -> impl IntoView {
    let (class, label) = if differs {
        ("range differs", "Differs")
    } else {
        ("range unsettled", "Not settled")
    };
    let condition = match range.condition {
        Some(c) => view! { <code>{c}</code> }.into_any(),
        None => view! { <span>"the whole table"</span> }.into_any(),
    };
    let rows = (!range.rows.is_empty()).then(|| {
        view! {
            <ul class="rows">
                {range.rows.into_iter().map(|row| view! { <li><code>{row}</code></li> }).collect_view()}
            </ul>
        }
    });
    let more = (range.more_rows > 0)
        .then(|| view! { <p class="more">{format!("... and {} more", range.more_rows)}</p> });
    view! {
        <div class=class>
            <p><b>{label}": "</b>{condition}</p>
            <p>{format!(
                "{} row(s) on the source, {} on the destination",
                range.source_rows, range.destination_rows
            )}</p>
            {rows}
            {more}
            <p class="hint">"Look at it on both sides:"</p>
            <pre class="inspect"><code>{range.inspect}</code></pre>
        </div>
    }
}
