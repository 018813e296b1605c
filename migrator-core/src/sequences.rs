//! Sequences: logical replication carries no sequence values, so the tool copies them. Once
//! before replication starts, every tick during catch-up, and a final time at completion.
//!
//! The destination is kept ahead of the source by a *lead*: at least `sequence_margin`
//! increments, and during catch-up enough for [`LEAD_POLLS`] poll intervals at the fastest rate
//! the source sequence has been seen to move ([`Rates`]). A lead that has shrunk below half of
//! what is wanted is renewed. So a busy sequence (200 inserts a second on a serial key) does not
//! fall behind between two looks, and one that does is corrected by the next sync: the cutover
//! conditions only count sequences that no sync can correct (missing on the destination). The
//! final sync at mark complete, after writes have stopped, is what guarantees that no value the
//! source handed out is handed out again on the destination.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::pg::{PgError, Session, q};

use crate::catalog::model::QualifiedName;
use crate::ddl::quote::qualified;
use crate::status::SequenceStatus;

/// One sequence's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceValue {
    pub name: QualifiedName,
    /// `None` until the sequence has handed out a value.
    pub last_value: Option<i64>,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
}

/// Every user sequence of the connected database (identity sequences included).
pub async fn read(client: &Session) -> Result<Vec<SequenceValue>, PgError> {
    Ok(client
        .query(
            "SELECT schemaname::text, sequencename::text, last_value, increment_by, min_value, max_value \
             FROM pg_sequences WHERE schemaname <> 'information_schema' AND schemaname !~ '^pg_' \
             ORDER BY 1, 2",
            &[],
        )
        .await
        .map_err(q(client.target(), "reading sequences"))?
        .iter()
        .map(|r| SequenceValue {
            name: QualifiedName::new(r.get::<_, String>(0), r.get::<_, String>(1)),
            last_value: r.get(2),
            increment: r.get(3),
            min: r.get(4),
            max: r.get(5),
        })
        .collect())
}

/// How many poll intervals of the fastest rate seen a catch-up lead covers.
pub const LEAD_POLLS: u32 = 4;

/// How fast each source sequence moves, measured between looks (in value units per second, the
/// peak seen since this process started).
#[derive(Debug, Default, Clone)]
pub struct Rates {
    seen: HashMap<QualifiedName, Seen>,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    value: i64,
    at: Instant,
    peak_per_second: f64,
}

impl Rates {
    /// Records the source values of one look taken at `now`.
    pub fn record(&mut self, source: &[SequenceValue], now: Instant) {
        for seq in source {
            let Some(value) = seq.last_value else {
                continue;
            };
            let peak = match self.seen.get(&seq.name) {
                Some(before) if now > before.at => {
                    let moved = value.abs_diff(before.value) as f64;
                    let rate = moved / now.duration_since(before.at).as_secs_f64();
                    before.peak_per_second.max(rate)
                }
                Some(before) => before.peak_per_second,
                None => 0.0,
            };
            self.seen.insert(
                seq.name.clone(),
                Seen {
                    value,
                    at: now,
                    peak_per_second: peak,
                },
            );
        }
    }

    /// The peak rate of `name` seen so far (value units per second), 0 when unknown.
    pub fn peak_per_second(&self, name: &QualifiedName) -> f64 {
        self.seen.get(name).map_or(0.0, |s| s.peak_per_second)
    }
}

/// How far ahead of the source a destination sequence is kept.
#[derive(Debug, Clone, Copy)]
pub struct Lead<'a> {
    /// At least this many increments (`sequence_margin`).
    pub margin: i64,
    /// During catch-up: the measured rates, and how long a lead must last at the peak rate.
    pub rates: Option<(&'a Rates, Duration)>,
}

impl<'a> Lead<'a> {
    /// `margin` increments, whatever the rate (the first sync and the final one).
    pub fn margin(margin: i64) -> Self {
        Lead {
            margin,
            rates: None,
        }
    }

    /// `margin` increments, or what lasts `horizon` at the peak rate seen, whichever is more.
    pub fn following(margin: i64, rates: &'a Rates, horizon: Duration) -> Self {
        Lead {
            margin,
            rates: Some((rates, horizon)),
        }
    }

    /// The wanted lead of `seq`, in value units (always positive).
    pub fn of(&self, seq: &SequenceValue) -> i64 {
        let floor = self.margin.saturating_mul(seq.increment.saturating_abs());
        let by_rate = self.rates.map_or(0, |(rates, horizon)| {
            let value = (rates.peak_per_second(&seq.name) * horizon.as_secs_f64()).ceil();
            if value >= i64::MAX as f64 {
                i64::MAX
            } else {
                value as i64
            }
        });
        floor.max(by_rate)
    }
}

/// How the destination's sequences compare with the source's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// `setval` to run on the destination: the source's value plus the wanted lead, for sequences
    /// behind or within half the wanted lead of the source (and present on the destination).
    pub updates: Vec<(QualifiedName, i64)>,
    /// Every source sequence with both values, for the status.
    pub rows: Vec<SequenceStatus>,
}

impl Comparison {
    /// Sequences on the source.
    pub fn total(&self) -> usize {
        self.rows.len()
    }

    /// Sequences whose destination value trails the source's (or that are missing there).
    pub fn behind(&self) -> usize {
        self.rows.iter().filter(|r| r.behind).count()
    }

    /// Sequences on the source that the destination lacks: no sync can correct them.
    pub fn missing(&self) -> usize {
        self.rows.iter().filter(|r| !r.on_destination).count()
    }
}

/// Compares `source` with `destination` (pure).
pub fn compare(source: &[SequenceValue], destination: &[SequenceValue], lead: Lead) -> Comparison {
    let dest: HashMap<&QualifiedName, &SequenceValue> =
        destination.iter().map(|s| (&s.name, s)).collect();
    let mut result = Comparison::default();
    for src in source {
        let dst = dest.get(&src.name);
        let mut row = SequenceStatus {
            schema: src.name.schema.clone(),
            name: src.name.name.clone(),
            source_value: src.last_value,
            destination_value: dst.and_then(|d| d.last_value),
            on_destination: dst.is_some(),
            behind: false,
        };
        let Some(src_value) = src.last_value else {
            result.rows.push(row);
            continue;
        };
        let ascending = src.increment > 0;
        let Some(dst) = dst else {
            // Not on the destination: the schema phase creates every sequence, so it was added
            // to the source later (schema drift). Behind, and nothing to set.
            row.behind = true;
            result.rows.push(row);
            continue;
        };
        let dst_value = dst.last_value;
        let ahead_by = |d: i64| {
            if ascending {
                d.saturating_sub(src_value)
            } else {
                src_value.saturating_sub(d)
            }
        };
        let behind = dst_value.is_none_or(|d| ahead_by(d) < 0);
        row.behind = behind;
        result.rows.push(row);
        let wanted_lead = lead.of(src);
        if behind || dst_value.is_some_and(|d| ahead_by(d) < wanted_lead / 2) {
            let step = if ascending {
                wanted_lead
            } else {
                wanted_lead.saturating_neg()
            };
            let target = src_value.saturating_add(step).clamp(src.min, src.max);
            result.updates.push((src.name.clone(), target));
        }
    }
    result
}

/// Reads both sides without changing anything; also returns the source's values (for [`Rates`]).
pub async fn check(
    src: &Session,
    dst: &Session,
    lead: Lead<'_>,
) -> Result<(Comparison, Vec<SequenceValue>), PgError> {
    let source = read(src).await?;
    let destination = read(dst).await?;
    Ok((compare(&source, &destination, lead), source))
}

/// Moves destination sequences ahead of the source's. Returns the comparison from before the
/// update (what was behind).
pub async fn sync(src: &Session, dst: &Session, lead: Lead<'_>) -> Result<Comparison, PgError> {
    let (comparison, _) = check(src, dst, lead).await?;
    for (name, value) in &comparison.updates {
        dst.execute(
            "SELECT setval($1::text::regclass, $2, true)",
            &[&qualified(name), value],
        )
        .await
        .map_err(q(dst.target(), "setting a sequence value"))?;
    }
    Ok(comparison)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(name: &str, last: Option<i64>, increment: i64) -> SequenceValue {
        SequenceValue {
            name: QualifiedName::new("public", name),
            last_value: last,
            increment,
            min: if increment > 0 { 1 } else { -1000 },
            max: if increment > 0 { 1_000_000 } else { -1 },
        }
    }

    fn compare(source: &[SequenceValue], destination: &[SequenceValue], margin: i64) -> Comparison {
        super::compare(source, destination, Lead::margin(margin))
    }

    #[test]
    fn behind_sequences_are_set_ahead_by_the_margin() {
        let c = compare(&[seq("a", Some(500), 1)], &[seq("a", None, 1)], 100);
        assert_eq!((c.total(), c.behind()), (1, 1));
        assert_eq!(
            (
                c.rows[0].source_value,
                c.rows[0].destination_value,
                c.rows[0].behind
            ),
            (Some(500), None, true)
        );
        assert_eq!(c.updates, vec![(QualifiedName::new("public", "a"), 600)]);
    }

    #[test]
    fn a_comfortable_lead_is_left_alone_and_a_thin_one_renewed() {
        let c = compare(&[seq("a", Some(500), 1)], &[seq("a", Some(580), 1)], 100);
        assert_eq!(c.behind(), 0);
        assert!(c.updates.is_empty());
        let c = compare(&[seq("a", Some(500), 1)], &[seq("a", Some(520), 1)], 100);
        assert_eq!(c.behind(), 0);
        assert_eq!(c.updates.len(), 1);
    }

    #[test]
    fn a_sequence_missing_on_the_destination_is_behind_with_nothing_to_set() {
        let c = compare(&[seq("new", Some(5), 1)], &[], 100);
        assert_eq!((c.behind(), c.updates.len()), (1, 0));
    }

    #[test]
    fn unused_source_sequences_need_nothing() {
        let c = compare(&[seq("a", None, 1)], &[seq("a", None, 1)], 100);
        assert_eq!((c.total(), c.behind(), c.updates.len()), (1, 0, 0));
    }

    #[test]
    fn descending_sequences_go_down_and_values_stay_within_bounds() {
        let c = compare(&[seq("d", Some(-10), -1)], &[seq("d", Some(-5), -1)], 100);
        assert_eq!(c.behind(), 1);
        assert_eq!(c.updates[0].1, -110);
        let c = compare(&[seq("d", Some(-990), -1)], &[seq("d", None, -1)], 100);
        assert_eq!(c.updates[0].1, -1000, "clamped to min_value");
        let c = compare(&[seq("a", Some(999_990), 1)], &[seq("a", None, 1)], 100);
        assert_eq!(c.updates[0].1, 1_000_000, "clamped to max_value");
    }

    #[test]
    fn the_lead_follows_the_peak_rate_seen_and_never_drops_below_the_margin() {
        let t0 = Instant::now();
        let mut rates = Rates::default();
        rates.record(&[seq("a", Some(100), 1)], t0);
        assert_eq!(
            rates.peak_per_second(&QualifiedName::new("public", "a")),
            0.0
        );
        // 1,000 values in 5 s: 200 a second.
        rates.record(&[seq("a", Some(1_100), 1)], t0 + Duration::from_secs(5));
        // A quieter stretch does not lower the peak.
        rates.record(&[seq("a", Some(1_150), 1)], t0 + Duration::from_secs(10));
        let horizon = Duration::from_secs(20);
        let lead = Lead::following(100, &rates, horizon);
        assert_eq!(lead.of(&seq("a", Some(1_150), 1)), 4_000);
        assert_eq!(
            lead.of(&seq("quiet", Some(5), 1)),
            100,
            "the margin is the floor"
        );
        // Increments of 10: the margin is 100 increments = 1,000 values.
        assert_eq!(lead.of(&seq("quiet", Some(5), 10)), 1_000);

        // With the rate's lead the destination is set 4,000 ahead, and 200 a second for one
        // 5 s poll leaves it ahead (not behind) and with more than half its lead: no update.
        let c = super::compare(
            &[seq("a", Some(1_150), 1)],
            &[seq("a", Some(1_000), 1)],
            lead,
        );
        assert_eq!((c.behind(), c.updates[0].1), (1, 5_150));
        let c = super::compare(
            &[seq("a", Some(2_150), 1)],
            &[seq("a", Some(5_150), 1)],
            lead,
        );
        assert_eq!((c.behind(), c.updates.len()), (0, 0));
    }

    #[test]
    fn descending_sequences_get_the_rate_lead_downwards() {
        let t0 = Instant::now();
        let mut rates = Rates::default();
        rates.record(&[seq("d", Some(-10), -1)], t0);
        rates.record(&[seq("d", Some(-510), -1)], t0 + Duration::from_secs(1));
        let lead = Lead::following(10, &rates, Duration::from_secs(1));
        let c = super::compare(
            &[seq("d", Some(-510), -1)],
            &[seq("d", Some(-20), -1)],
            lead,
        );
        assert_eq!(
            c.updates[0].1, -1000,
            "-510 - 500, clamped to min_value -1000"
        );
    }

    #[test]
    fn missing_sequences_are_counted_apart_from_behind_ones() {
        let c = compare(
            &[seq("a", Some(5), 1), seq("b", Some(5), 1)],
            &[seq("a", Some(1), 1)],
            100,
        );
        assert_eq!((c.behind(), c.missing()), (2, 1));
    }
}
