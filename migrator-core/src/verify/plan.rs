//! What a verification compares and the SQL of each comparison (pure).
//!
//! A table with a key (primary key, else replica identity index) is cut into key ranges:
//! `[-inf, b1), [b1, b2), ..., [bn, +inf)`, the boundaries read from a sample of the source, so
//! every row falls in exactly one range whatever was written since. Each range is summed up on
//! each server as a row count and the sum of a 64-bit hash of every row's text: a sum does not
//! depend on the order rows are read in, and only two numbers leave the server.

use crate::catalog::model::QualifiedName;
use crate::ddl::quote::{ident, literal, qualified};

/// A table as the source has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub name: QualifiedName,
    /// Every column, in the source's order (generated ones included: their values must agree
    /// too).
    pub columns: Vec<String>,
    /// The key ranges follow; empty: none (compared whole).
    pub key: Vec<KeyColumn>,
    /// Heap and TOAST bytes on the source.
    pub bytes: u64,
    /// `pg_class.reltuples` (negative: never counted).
    pub tuples: f64,
    /// The bytes one of its ranges reads on the source, for the rate limiter (its size over
    /// the number of ranges, once planned).
    pub range_bytes: u64,
}

/// One column of a key, with its type as SQL (`format_type`, qualified: it is read with an empty
/// `search_path`), for casting the text of a bound back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyColumn {
    pub name: String,
    pub type_sql: String,
}

/// Which rows of a table one comparison covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rows {
    /// Every row (a table without a key, or small enough for one range).
    All,
    /// Key at or above `lower` and below `upper` (`None`: open), each the text of every key
    /// column.
    Range {
        lower: Option<Vec<String>>,
        upper: Option<Vec<String>>,
    },
    /// The one row with this key.
    Key(Vec<String>),
}

/// How many ranges a table of `bytes` is cut into, for ranges of about `chunk` bytes.
pub fn range_count(bytes: u64, chunk: u64) -> usize {
    bytes.div_ceil(chunk.max(1)).max(1) as usize
}

/// How many sampled keys to read to place `ranges - 1` boundaries.
pub fn sample_size(ranges: usize) -> usize {
    (ranges * 16).min(200_000)
}

/// The `TABLESAMPLE SYSTEM` percentage that reads about `wanted` rows of a table of `tuples`
/// rows and `bytes` bytes (`tuples` unknown: a row of 100 bytes assumed).
pub fn sample_percent(wanted: usize, tuples: f64, bytes: u64) -> f64 {
    let tuples = if tuples > 0.0 {
        tuples
    } else {
        (bytes / 100).max(1) as f64
    };
    (wanted as f64 * 100.0 / tuples).clamp(0.0001, 100.0)
}

/// `count - 1` boundaries at even quantiles of `sample` (sorted by key), without repeats.
pub fn boundaries(sample: &[Vec<String>], count: usize) -> Vec<Vec<String>> {
    let mut picked: Vec<Vec<String>> = Vec::new();
    if count < 2 || sample.is_empty() {
        return picked;
    }
    for i in 1..count {
        let b = &sample[i * sample.len() / count];
        if picked.last() != Some(b) {
            picked.push(b.clone());
        }
    }
    picked
}

/// The ranges between `boundaries` (sorted, distinct), covering every key.
pub fn ranges(boundaries: Vec<Vec<String>>) -> Vec<Rows> {
    if boundaries.is_empty() {
        return vec![Rows::All];
    }
    let mut lower = None;
    let mut out = Vec::with_capacity(boundaries.len() + 1);
    for b in boundaries {
        out.push(Rows::Range {
            lower: lower.take(),
            upper: Some(b.clone()),
        });
        lower = Some(b);
    }
    out.push(Rows::Range { lower, upper: None });
    out
}

/// `"a", "b"`: the key's columns, quoted; with `cast`, each as `"a"::text`.
fn key_columns(table: &Table, cast: bool) -> String {
    let suffix = if cast { "::text" } else { "" };
    table
        .key
        .iter()
        .map(|k| format!("{}{suffix}", ident(&k.name)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `("a", "b")`, or `("a")` for one column.
fn key_tuple(table: &Table) -> String {
    format!("({})", key_columns(table, false))
}

/// `($1::text::integer, $2::text::text)` from parameter `first` on.
fn key_params(table: &Table, first: usize) -> String {
    let casts: Vec<String> = table
        .key
        .iter()
        .enumerate()
        .map(|(i, k)| format!("${}::text::{}", first + i, k.type_sql))
        .collect();
    format!("({})", casts.join(", "))
}

/// `('42'::integer)`: a bound written out for people.
fn key_literals(table: &Table, values: &[String]) -> String {
    let casts: Vec<String> = table
        .key
        .iter()
        .zip(values)
        .map(|(k, v)| format!("{}::{}", literal(v), k.type_sql))
        .collect();
    format!("({})", casts.join(", "))
}

/// The condition selecting `rows` with its parameters (`None`: every row).
pub fn condition(table: &Table, rows: &Rows) -> Option<(String, Vec<String>)> {
    let key = key_tuple(table);
    match rows {
        Rows::All => None,
        Rows::Key(values) => Some((format!("{key} = {}", key_params(table, 1)), values.clone())),
        Rows::Range { lower, upper } => {
            let mut parts = Vec::new();
            let mut params = Vec::new();
            if let Some(lower) = lower {
                parts.push(format!(">= {}", key_params(table, params.len() + 1)));
                params.extend(lower.iter().cloned());
            }
            if let Some(upper) = upper {
                parts.push(format!("< {}", key_params(table, params.len() + 1)));
                params.extend(upper.iter().cloned());
            }
            (!parts.is_empty()).then(|| {
                let text = parts
                    .iter()
                    .map(|p| format!("{key} {p}"))
                    .collect::<Vec<_>>()
                    .join(" AND ");
                (text, params)
            })
        }
    }
}

/// The condition selecting `rows`, with the values written in, for people (`None`: every row).
pub fn describe(table: &Table, rows: &Rows) -> Option<String> {
    let key = key_tuple(table);
    match rows {
        Rows::All => None,
        Rows::Key(values) => Some(format!("{key} = {}", key_literals(table, values))),
        Rows::Range { lower, upper } => {
            let mut parts = Vec::new();
            if let Some(lower) = lower {
                parts.push(format!("{key} >= {}", key_literals(table, lower)));
            }
            if let Some(upper) = upper {
                parts.push(format!("{key} < {}", key_literals(table, upper)));
            }
            (!parts.is_empty()).then(|| parts.join(" AND "))
        }
    }
}

/// The expression hashing one row: its columns as one record, as text, hashed to 64 bits. The
/// text of a value is the same on every version for the same value once the session's
/// `TimeZone`, `DateStyle`, `IntervalStyle`, `extra_float_digits` and `bytea_output` agree
/// (see `verify::SESSION`).
fn row_hash(table: &Table) -> String {
    let columns: Vec<String> = table.columns.iter().map(|c| ident(c)).collect();
    format!(
        "pg_catalog.hashtextextended(ROW({})::text, 0)",
        columns.join(", ")
    )
}

fn from_where(table: &Table, rows: &Rows) -> (String, Vec<String>) {
    match condition(table, rows) {
        None => (format!("FROM ONLY {}", qualified(&table.name)), Vec::new()),
        Some((cond, params)) => (
            format!("FROM ONLY {} WHERE {cond}", qualified(&table.name)),
            params,
        ),
    }
}

/// The row count and the sum of the row hashes (as text) of `rows`.
pub fn digest_sql(table: &Table, rows: &Rows) -> (String, Vec<String>) {
    let (from, params) = from_where(table, rows);
    (
        format!(
            "SELECT count(*), coalesce(sum({}), 0)::text {from}",
            row_hash(table)
        ),
        params,
    )
}

/// Every row of `rows`: its key (the text of each column) and its hash.
pub fn rows_sql(table: &Table, rows: &Rows) -> (String, Vec<String>) {
    let (from, params) = from_where(table, rows);
    (
        format!(
            "SELECT ARRAY[{}]::text[], {} {from}",
            key_columns(table, true),
            row_hash(table)
        ),
        params,
    )
}

/// The sampled keys of a table, sorted: `$1` is the `TABLESAMPLE SYSTEM` percentage.
pub fn sample_sql(table: &Table) -> String {
    format!(
        "SELECT ARRAY[{}]::text[] FROM ONLY {} TABLESAMPLE SYSTEM (($1::float8)::float4) ORDER BY {}",
        key_columns(table, true),
        qualified(&table.name),
        key_columns(table, false)
    )
}

/// A query to run on both servers to look at `rows` by hand.
pub fn inspect_sql(table: &Table, rows: &Rows) -> String {
    let order = if table.key.is_empty() {
        String::new()
    } else {
        format!(" ORDER BY {}", key_columns(table, false))
    };
    match describe(table, rows) {
        None => format!("SELECT * FROM ONLY {}{order};", qualified(&table.name)),
        Some(cond) => format!(
            "SELECT * FROM ONLY {} WHERE {cond}{order};",
            qualified(&table.name)
        ),
    }
}

/// One side's summary of some rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub rows: i64,
    pub sum: String,
}

/// What one round of reads shows (see [`judge`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The destination holds what the source held at its first read (`First`) or its second.
    EqualFirst,
    EqualSecond,
    /// The source held still across both of its reads and the destination, which had applied
    /// everything up to the first read and nothing past the second, differs: rows were lost or
    /// changed.
    Differs,
    /// The source changed between its reads: nothing proven either way; read again.
    Changing,
}

/// The verdict on source read `first`, destination read `destination` (made after the
/// destination applied past `first`'s WAL position) and source read `second` (after it).
pub fn judge(first: &Digest, destination: &Digest, second: &Digest) -> Verdict {
    if destination == first {
        Verdict::EqualFirst
    } else if destination == second {
        Verdict::EqualSecond
    } else if first == second {
        Verdict::Differs
    } else {
        Verdict::Changing
    }
}

/// Parses a `pg_lsn` text (`16/B374D848`) to a number, for ordering.
pub fn lsn_value(lsn: &str) -> Option<u64> {
    let (hi, lo) = lsn.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

/// How the rows of one range differ: keys missing on the destination, extra there, changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowDiff {
    pub missing: Vec<Vec<String>>,
    pub extra: Vec<Vec<String>>,
    pub changed: Vec<Vec<String>>,
}

impl RowDiff {
    pub fn keys(&self) -> impl Iterator<Item = &Vec<String>> {
        self.missing
            .iter()
            .chain(self.extra.iter())
            .chain(self.changed.iter())
    }

    pub fn len(&self) -> usize {
        self.missing.len() + self.extra.len() + self.changed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Compares two sides' `key -> row hash` maps.
pub fn diff_rows(
    source: &std::collections::HashMap<Vec<String>, i64>,
    destination: &std::collections::HashMap<Vec<String>, i64>,
) -> RowDiff {
    let mut diff = RowDiff::default();
    for (key, hash) in source {
        match destination.get(key) {
            None => diff.missing.push(key.clone()),
            Some(h) if h != hash => diff.changed.push(key.clone()),
            Some(_) => {}
        }
    }
    for key in destination.keys() {
        if !source.contains_key(key) {
            diff.extra.push(key.clone());
        }
    }
    diff.missing.sort();
    diff.extra.sort();
    diff.changed.sort();
    diff
}

/// `("id")=(42)` for a report line.
pub fn key_text(table: &Table, values: &[String]) -> String {
    let names: Vec<&str> = table.key.iter().map(|k| k.name.as_str()).collect();
    format!("({})=({})", names.join(", "), values.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(key: &[(&str, &str)]) -> Table {
        Table {
            name: QualifiedName::new("Sales \"Dept\"", "Ordér"),
            columns: vec!["id".into(), "Name".into()],
            key: key
                .iter()
                .map(|(n, t)| KeyColumn {
                    name: (*n).into(),
                    type_sql: (*t).into(),
                })
                .collect(),
            bytes: 0,
            tuples: 0.0,
            range_bytes: 0,
        }
    }

    fn k(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn ranges_cover_every_key_once() {
        assert_eq!(ranges(Vec::new()), vec![Rows::All]);
        let r = ranges(vec![k(&["10"]), k(&["20"])]);
        assert_eq!(
            r,
            vec![
                Rows::Range {
                    lower: None,
                    upper: Some(k(&["10"]))
                },
                Rows::Range {
                    lower: Some(k(&["10"])),
                    upper: Some(k(&["20"]))
                },
                Rows::Range {
                    lower: Some(k(&["20"])),
                    upper: None
                },
            ]
        );
    }

    #[test]
    fn boundaries_are_even_quantiles_without_repeats() {
        let sample: Vec<Vec<String>> = (0..100).map(|i| vec![i.to_string()]).collect();
        assert_eq!(
            boundaries(&sample, 4),
            vec![k(&["25"]), k(&["50"]), k(&["75"])]
        );
        let same: Vec<Vec<String>> = (0..100).map(|_| k(&["x"])).collect();
        assert_eq!(boundaries(&same, 4), vec![k(&["x"])]);
        assert!(boundaries(&sample, 1).is_empty());
        assert!(boundaries(&[], 8).is_empty());
    }

    #[test]
    fn range_counts_and_sample_sizes() {
        assert_eq!(range_count(0, 32), 1);
        assert_eq!(range_count(32, 32), 1);
        assert_eq!(range_count(33, 32), 2);
        assert_eq!(sample_size(10), 160);
        assert_eq!(sample_percent(160, 16_000.0, 0), 1.0);
        assert_eq!(sample_percent(1_000, 10.0, 0), 100.0);
        assert_eq!(sample_percent(100, -1.0, 1_000_000), 1.0);
    }

    #[test]
    fn conditions_quote_names_and_bind_values() {
        let t = table(&[("id", "integer"), ("Région \"x\"", "text")]);
        let (sql, params) = condition(
            &t,
            &Rows::Range {
                lower: Some(k(&["1", "a'b"])),
                upper: Some(k(&["2", "c"])),
            },
        )
        .unwrap();
        assert_eq!(
            sql,
            "(\"id\", \"Région \"\"x\"\"\") >= ($1::text::integer, $2::text::text) AND (\"id\", \"Région \"\"x\"\"\") < ($3::text::integer, $4::text::text)"
        );
        assert_eq!(params, k(&["1", "a'b", "2", "c"]));
        assert_eq!(condition(&t, &Rows::All), None);
        assert_eq!(
            describe(&t, &Rows::Key(k(&["1", "a'b"]))).unwrap(),
            "(\"id\", \"Région \"\"x\"\"\") = ('1'::integer, 'a''b'::text)"
        );
    }

    #[test]
    fn digests_hash_every_column_of_only_the_table() {
        let t = table(&[("id", "integer")]);
        let (sql, params) = digest_sql(&t, &Rows::All);
        assert_eq!(
            sql,
            "SELECT count(*), coalesce(sum(pg_catalog.hashtextextended(ROW(\"id\", \"Name\")::text, 0)), 0)::text FROM ONLY \"Sales \"\"Dept\"\"\".\"Ordér\""
        );
        assert!(params.is_empty());
        assert!(
            inspect_sql(&t, &Rows::Key(k(&["7"])))
                .ends_with("WHERE (\"id\") = ('7'::integer) ORDER BY \"id\";")
        );
        assert!(sample_sql(&t).contains("TABLESAMPLE SYSTEM"));
    }

    #[test]
    fn the_verdict_needs_a_still_source_to_call_a_difference() {
        let d = |rows: i64, sum: &str| Digest {
            rows,
            sum: sum.into(),
        };
        assert_eq!(
            judge(&d(1, "a"), &d(1, "a"), &d(1, "a")),
            Verdict::EqualFirst
        );
        assert_eq!(
            judge(&d(1, "a"), &d(2, "b"), &d(2, "b")),
            Verdict::EqualSecond
        );
        assert_eq!(judge(&d(1, "a"), &d(1, "x"), &d(1, "a")), Verdict::Differs);
        assert_eq!(judge(&d(1, "a"), &d(2, "x"), &d(3, "c")), Verdict::Changing);
    }

    #[test]
    fn row_diffs_name_missing_extra_and_changed_keys() {
        let src = [(k(&["1"]), 10), (k(&["2"]), 20), (k(&["3"]), 30)]
            .into_iter()
            .collect();
        let dst = [(k(&["1"]), 10), (k(&["2"]), 21), (k(&["4"]), 40)]
            .into_iter()
            .collect();
        let diff = diff_rows(&src, &dst);
        assert_eq!(diff.missing, vec![k(&["3"])]);
        assert_eq!(diff.extra, vec![k(&["4"])]);
        assert_eq!(diff.changed, vec![k(&["2"])]);
        assert_eq!(diff.len(), 3);
    }

    #[test]
    fn lsns_order_as_numbers() {
        assert_eq!(lsn_value("0/10"), Some(16));
        assert!(lsn_value("1/0").unwrap() > lsn_value("0/FFFFFFFF").unwrap());
        assert_eq!(lsn_value("nope"), None);
    }
}
