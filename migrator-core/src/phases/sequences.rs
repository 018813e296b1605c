//! Sequences: logical replication carries no sequence values, so the tool copies them. Once
//! before replication starts, every tick during catch-up, and a final time at completion. The
//! destination is set `sequence_margin` increments ahead of the source, so values the source
//! hands out between two syncs cannot collide after cutover.

use std::collections::HashMap;

use tokio_postgres::Client;

use super::q;
use crate::catalog::model::QualifiedName;
use crate::ddl::quote::qualified;
use crate::pg::PgError;
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
pub async fn read(client: &Client, target: &str) -> Result<Vec<SequenceValue>, PgError> {
    Ok(client
        .query(
            "SELECT schemaname::text, sequencename::text, last_value, increment_by, min_value, max_value \
             FROM pg_sequences WHERE schemaname <> 'information_schema' AND schemaname !~ '^pg_' \
             ORDER BY 1, 2",
            &[],
        )
        .await
        .map_err(q(target, "reading sequences"))?
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

/// How the destination's sequences compare with the source's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// `setval` to run on the destination: the source's value plus the margin, for sequences
    /// behind or within half the margin of the source (and present on the destination).
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
}

/// Compares `source` with `destination` (pure).
pub fn compare(source: &[SequenceValue], destination: &[SequenceValue], margin: i64) -> Comparison {
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
        let wanted_lead = margin.saturating_mul(src.increment.abs());
        if behind || dst_value.is_some_and(|d| ahead_by(d) < wanted_lead / 2) {
            let target = src_value
                .saturating_add(margin.saturating_mul(src.increment))
                .clamp(src.min, src.max);
            result.updates.push((src.name.clone(), target));
        }
    }
    result
}

/// Reads both sides without changing anything.
pub async fn check(
    src: &Client,
    src_target: &str,
    dst: &Client,
    dst_target: &str,
    margin: i64,
) -> Result<Comparison, PgError> {
    let source = read(src, src_target).await?;
    let destination = read(dst, dst_target).await?;
    Ok(compare(&source, &destination, margin))
}

/// Moves destination sequences ahead of the source's. Returns the comparison from before the
/// update (what was behind).
pub async fn sync(
    src: &Client,
    src_target: &str,
    dst: &Client,
    dst_target: &str,
    margin: i64,
) -> Result<Comparison, PgError> {
    let comparison = check(src, src_target, dst, dst_target, margin).await?;
    for (name, value) in &comparison.updates {
        dst.execute(
            "SELECT setval($1::text::regclass, $2, true)",
            &[&qualified(name), value],
        )
        .await
        .map_err(q(dst_target, "setting a sequence value"))?;
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
}
