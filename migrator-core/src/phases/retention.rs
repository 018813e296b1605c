//! WAL held on the source for this mapping, at the instance level: slots of ours that nothing
//! uses any more, whether `max_slot_wal_keep_size` leaves room for the initial copy, and a
//! forecast of when the slots would reach it.
//!
//! A slot keeps every byte of WAL from its restart point until its subscriber confirms it. A
//! slot of ours whose database this mapping no longer migrates (excluded since, or a mapping
//! renamed) is read by no one, so it grows until the source's disk is full: that is a blocking
//! finding with the statement that removes it. Slots of databases still migrated are the
//! database tasks' business (a slot without a subscription is an interrupted copy, which the
//! next copy drops; a completed database's slot is dropped by `Completing`).
//!
//! With `max_slot_wal_keep_size` set, the source invalidates a slot that holds more: during the
//! initial copy the slot holds all WAL written since the copy began, so a copy that lasts longer
//! than the limit's worth of the source's write rate loses its slot at the end. [`WalWatch`]
//! measures the source's WAL rate and the slots' growth between instance checks.

use std::time::{Duration, Instant};

use crate::pg::{PgError, Session};

use super::{MappingContext, q};
use crate::findings::{Code, Finding};
use crate::naming;
use crate::status::WalForecast;

/// The copy rate assumed for the forecast when no rate limit is set (MB/s). The benches measure
/// 60-65 MB/s on two cores; a busy production source is slower.
pub const ASSUMED_COPY_MB_PER_S: u64 = 50;

const MB: f64 = 1024.0 * 1024.0;

/// One replication slot on the source with our naming.
#[derive(Debug, Clone, PartialEq)]
pub struct OurSlot {
    pub name: String,
    pub database: String,
    pub active: bool,
    pub retained_bytes: i64,
    pub safe_wal_bytes: Option<i64>,
}

/// What the source shows about WAL, read in one look.
#[derive(Debug, Clone, PartialEq)]
pub struct WalFacts {
    /// `pg_current_wal_lsn()` as a byte position.
    pub wal_position: i64,
    /// `max_slot_wal_keep_size` in bytes; `None` when unlimited (-1).
    pub limit_bytes: Option<i64>,
    /// Slots named like ours for this mapping.
    pub slots: Vec<OurSlot>,
    /// Size of the databases this mapping migrates.
    pub databases_bytes: i64,
}

/// Reads WAL facts from the source (`src` on any database).
pub async fn observe(
    ctx: &MappingContext,
    src: &Session,
    databases: &[String],
) -> Result<WalFacts, PgError> {
    let row = src
        .query_one(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint, \
               (SELECT setting::bigint FROM pg_settings WHERE name = 'max_slot_wal_keep_size'), \
               (SELECT coalesce(sum(pg_database_size(datname)), 0)::bigint FROM pg_database \
                 WHERE datname = ANY($1))",
            &[&databases],
        )
        .await
        .map_err(q(
            src.target(),
            "reading the source's WAL position and limits",
        ))?;
    let limit_mb: i64 = row.get(1);
    let prefix = format!("{}{}_", naming::PREFIX, ctx.name);
    let slots = src
        .query(
            "SELECT slot_name::text, database::text, active, \
               coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint, \
               safe_wal_size::bigint \
             FROM pg_replication_slots WHERE slot_type = 'logical' AND starts_with(slot_name, $1)",
            &[&prefix],
        )
        .await
        .map_err(q(src.target(), "listing replication slots"))?
        .iter()
        .map(|r| OurSlot {
            name: r.get(0),
            database: r.get::<_, Option<String>>(1).unwrap_or_default(),
            active: r.get(2),
            retained_bytes: r.get(3),
            safe_wal_bytes: r.get(4),
        })
        // The prefix of mapping "prod" also matches mapping "prod_eu": keep exact names only.
        .filter(|s| naming::object_name(&ctx.name, &s.database) == s.name)
        .collect();
    Ok(WalFacts {
        wal_position: row.get(0),
        limit_bytes: (limit_mb >= 0).then(|| limit_mb * 1024 * 1024),
        slots,
        databases_bytes: row.get(2),
    })
}

/// Slots of ours whose database this mapping no longer migrates (pure).
pub fn orphans(facts: &WalFacts, databases: &[String]) -> Vec<Finding> {
    facts
        .slots
        .iter()
        .filter(|s| !databases.contains(&s.database))
        .map(|s| {
            Finding::blocking(
                Code::OrphanSlot,
                format!(
                    "the replication slot {} on the source belongs to this mapping's database {:?}, \
                     which it no longer migrates; it holds {} MB of WAL and grows until the \
                     source's disk is full",
                    s.name,
                    s.database,
                    s.retained_bytes.max(0) / (1024 * 1024)
                ),
                format!(
                    "if that database is to be migrated again, include it in databases.include; \
                     otherwise, on the source: SELECT pg_drop_replication_slot('{}'); and in \
                     database {:?}: DROP PUBLICATION IF EXISTS {}",
                    s.name,
                    s.database,
                    crate::ddl::quote::ident(&s.name)
                ),
            )
        })
        .collect()
}

/// Rates measured between two instance checks.
#[derive(Debug, Default)]
pub struct WalWatch {
    last: Option<(Instant, i64, i64)>,
    generated_per_s: Option<f64>,
    retained_per_s: Option<f64>,
}

impl WalWatch {
    /// Records one look at `now` and returns the forecast.
    pub fn update(&mut self, facts: &WalFacts, now: Instant) -> WalForecast {
        let retained = facts
            .slots
            .iter()
            .map(|s| s.retained_bytes)
            .max()
            .unwrap_or(0);
        if let Some((at, position, retained_then)) = self.last {
            let seconds = now.duration_since(at).as_secs_f64();
            if seconds >= 1.0 {
                self.generated_per_s =
                    Some((facts.wal_position - position).max(0) as f64 / seconds);
                self.retained_per_s = Some((retained - retained_then).max(0) as f64 / seconds);
                self.last = Some((now, facts.wal_position, retained));
            }
        } else {
            self.last = Some((now, facts.wal_position, retained));
        }
        let headroom = facts.limit_bytes.map(|limit| {
            let safe = facts.slots.iter().filter_map(|s| s.safe_wal_bytes).min();
            safe.unwrap_or(limit - retained).max(0) as f64
        });
        let minutes = |rate: Option<f64>| match (headroom, rate) {
            (Some(room), Some(rate)) if rate > 0.0 => Some(room / rate / 60.0),
            _ => None,
        };
        WalForecast {
            generated_mb_per_min: self.generated_per_s.map(|r| r * 60.0 / MB),
            retained_mb: retained as f64 / MB,
            retained_mb_per_min: self.retained_per_s.map(|r| r * 60.0 / MB),
            limit_mb: facts.limit_bytes.map(|l| l as f64 / MB),
            minutes_to_limit: minutes(self.retained_per_s),
            minutes_to_limit_if_stalled: minutes(self.generated_per_s),
        }
    }

    /// Warns when the initial copy of every database (at the rate limit, or at
    /// [`ASSUMED_COPY_MB_PER_S`]) would let a slot hold more WAL than `max_slot_wal_keep_size`
    /// at the source's current WAL rate. `None` until a rate has been measured.
    pub fn copy_warning(&self, facts: &WalFacts, rate_limit_mb_per_s: u64) -> Option<Finding> {
        let limit = facts.limit_bytes?;
        let wal_per_s = self.generated_per_s?;
        let copy_mb_per_s = match rate_limit_mb_per_s {
            0 => ASSUMED_COPY_MB_PER_S,
            mb => mb,
        };
        let copy_seconds = facts.databases_bytes as f64 / (copy_mb_per_s as f64 * MB);
        let wal_during_copy = wal_per_s * copy_seconds;
        (wal_during_copy > limit as f64).then(|| {
            Finding::warning(
                Code::WalKeepTooSmall,
                format!(
                    "max_slot_wal_keep_size on the source is {} MB, but copying {} MB at {} MB/s \
                     takes about {} while the source writes {:.0} MB of WAL a minute: about {:.0} MB \
                     would pile up in the slot, and the source would invalidate it before the copy \
                     ends",
                    limit / (1024 * 1024),
                    facts.databases_bytes / (1024 * 1024),
                    copy_mb_per_s,
                    humantime::format_duration(Duration::from_secs(copy_seconds as u64)),
                    wal_per_s * 60.0 / MB,
                    wal_during_copy / MB
                ),
                format!(
                    "raise max_slot_wal_keep_size on the source to at least {:.0} MB (or -1) for \
                     the migration, or migrate when the source writes less",
                    wal_during_copy * 1.5 / MB
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(
        position_mb: i64,
        limit_mb: Option<i64>,
        slots: &[(&str, i64, Option<i64>)],
    ) -> WalFacts {
        WalFacts {
            wal_position: position_mb * 1024 * 1024,
            limit_bytes: limit_mb.map(|l| l * 1024 * 1024),
            slots: slots
                .iter()
                .map(|(db, retained, safe)| OurSlot {
                    name: naming::object_name("prod", db),
                    database: (*db).into(),
                    active: true,
                    retained_bytes: retained * 1024 * 1024,
                    safe_wal_bytes: safe.map(|s| s * 1024 * 1024),
                })
                .collect(),
            databases_bytes: 10_000 * 1024 * 1024,
        }
    }

    #[test]
    fn slots_of_databases_no_longer_migrated_are_orphans() {
        let f = facts(0, None, &[("shop", 5, None), ("old", 700, None)]);
        let found = orphans(&f, &["shop".to_owned()]);
        assert_eq!(found.len(), 1);
        assert!(found[0].is_blocking() && found[0].message.contains("700 MB"));
        assert!(found[0].fix.contains(&format!(
            "pg_drop_replication_slot('{}')",
            naming::object_name("prod", "old")
        )));
        assert!(orphans(&f, &["shop".to_owned(), "old".to_owned()]).is_empty());
    }

    #[test]
    fn the_forecast_follows_the_rates_between_looks() {
        let mut w = WalWatch::default();
        let t0 = Instant::now();
        let first = w.update(
            &facts(1_000, Some(2_000), &[("shop", 100, Some(1_900))]),
            t0,
        );
        assert_eq!(first.generated_mb_per_min, None);
        assert_eq!(first.minutes_to_limit, None);
        // A minute later: 600 MB written, the slot grew by 100 MB.
        let f = w.update(
            &facts(1_600, Some(2_000), &[("shop", 200, Some(1_800))]),
            t0 + Duration::from_secs(60),
        );
        assert_eq!(f.generated_mb_per_min, Some(600.0));
        assert_eq!(f.retained_mb_per_min, Some(100.0));
        assert_eq!(f.minutes_to_limit, Some(18.0));
        assert_eq!(f.minutes_to_limit_if_stalled, Some(3.0));
        assert_eq!(f.limit_mb, Some(2_000.0));
    }

    #[test]
    fn a_copy_that_outlasts_the_limit_is_warned_about() {
        let mut w = WalWatch::default();
        let t0 = Instant::now();
        let f0 = facts(0, Some(1_024), &[]);
        w.update(&f0, t0);
        assert!(w.copy_warning(&f0, 0).is_none(), "no rate yet");
        // 10 GB at 50 MB/s: 205 s; the source writes 10 MB/s: 2 GB > 1 GB.
        let f1 = facts(600, Some(1_024), &[]);
        w.update(&f1, t0 + Duration::from_secs(60));
        let warning = w.copy_warning(&f1, 0).unwrap();
        assert_eq!(warning.code, "wal_keep_too_small");
        assert!(!warning.is_blocking());
        // At a 500 MB/s limit the copy takes 20 s: 200 MB fit.
        assert!(w.copy_warning(&f1, 500).is_none());
        // Unlimited: nothing to warn about.
        assert!(w.copy_warning(&facts(600, None, &[]), 0).is_none());
    }
}
