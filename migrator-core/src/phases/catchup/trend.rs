//! Whether the destination keeps up with the source's writes.
//!
//! A database's slot has to read all of the source's WAL (decoding reads every record, whichever
//! database wrote it), and it confirms a position once the destination has applied everything
//! before it. So the source's WAL rate (how fast `pg_current_wal_lsn()` moves) against the apply
//! rate (how fast the slot's `confirmed_flush_lsn` moves) says whether the lag can ever drain:
//! their difference is the rate at which the lag grows. A busy minute makes the lag rise and
//! fall; [`LagTrend`] reports `apply_behind` only when the lag has grown over a whole window
//! (`apply_behind_after`, a few minutes) and over each half of it, so a burst that drains does
//! not count. It names both rates, the growth per minute, and what to do. The warning does not
//! block: a lag that grows still holds every change in the slot; it only delays cutover ready.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::findings::{Code, Finding};

/// Less growth than this over the window is noise (a heartbeat, one transaction's WAL).
const MIN_GROWTH: u64 = 16 * 1024 * 1024;

/// Where the source's WAL and the slot stand at one look, in bytes from `0/0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Positions {
    /// The source's current WAL position.
    pub wal: u64,
    /// The slot's `confirmed_flush_lsn`: everything before it is on the destination.
    pub confirmed: u64,
}

impl Positions {
    fn lag(self) -> u64 {
        self.wal.saturating_sub(self.confirmed)
    }
}

/// The rates measured over one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// Bytes of WAL the source wrote per second.
    pub wal: f64,
    /// Bytes per second the slot confirmed (the destination applied).
    pub apply: f64,
    /// Seconds the rates were measured over.
    pub seconds: f64,
    /// The lag at the start and at the end of the window, in bytes.
    pub lag_then: u64,
    pub lag_now: u64,
}

impl Rates {
    /// The rates from one look to a later one.
    fn between((then, old): (Instant, Positions), (now, new): (Instant, Positions)) -> Rates {
        let seconds = now
            .duration_since(then)
            .as_secs_f64()
            .max(f64::MIN_POSITIVE);
        Rates {
            wal: new.wal.saturating_sub(old.wal) as f64 / seconds,
            apply: new.confirmed.saturating_sub(old.confirmed) as f64 / seconds,
            seconds,
            lag_then: old.lag(),
            lag_now: new.lag(),
        }
    }
}

/// The positions seen at earlier looks at one database, over the last window.
#[derive(Debug, Default)]
pub struct LagTrend {
    samples: VecDeque<(Instant, Positions)>,
}

impl LagTrend {
    /// Records one look at `now` (`None` while there is no connected subscription, which starts
    /// the history again) and returns the rates when the lag has grown over the whole `window`
    /// and over each half of it.
    pub fn record(
        &mut self,
        positions: Option<Positions>,
        now: Instant,
        window: Duration,
    ) -> Option<Rates> {
        let Some(positions) = positions else {
            self.samples.clear();
            return None;
        };
        self.samples.push_back((now, positions));
        // Keep the newest sample that is at least a window old, and everything after it.
        while self
            .samples
            .get(1)
            .is_some_and(|(t, _)| now.duration_since(*t) >= window)
        {
            self.samples.pop_front();
        }
        let &(then, old) = self.samples.front()?;
        if window.is_zero() || now.duration_since(then) < window || then == now {
            return None;
        }
        // The sample nearest the window's middle, between its two ends.
        let middle = then + now.duration_since(then) / 2;
        let inner = self.samples.range(1..self.samples.len() - 1);
        let (_, mid) = inner.min_by_key(|(t, _)| t.max(&middle).duration_since(*t.min(&middle)))?;
        let grew = |from: Positions, to: Positions| to.lag() > from.lag();
        let rates = Rates::between((then, old), (now, positions));
        (positions.lag() >= old.lag() + MIN_GROWTH && grew(old, *mid) && grew(*mid, positions))
            .then_some(rates)
    }

    /// The rates from the oldest sample kept to the newest, once they are at least 10 s apart
    /// (for the status, before a whole window has passed).
    pub fn rates(&self) -> Option<Rates> {
        let (&first, &last) = (self.samples.front()?, self.samples.back()?);
        (last.0.duration_since(first.0) >= Duration::from_secs(10))
            .then(|| Rates::between(first, last))
    }

    /// [`LagTrend::record`], as the `apply_behind` finding of `subscription` in database `db`.
    pub fn update(
        &mut self,
        subscription: &str,
        db: &str,
        positions: Option<Positions>,
        now: Instant,
        window: Duration,
    ) -> Option<Finding> {
        self.record(positions, now, window)
            .map(|rates| finding(subscription, db, &rates))
    }
}

/// The warning for a lag that grew over a window at `rates`.
pub fn finding(subscription: &str, db: &str, rates: &Rates) -> Finding {
    let mb = |bytes: f64| bytes / 1_048_576.0;
    let growth = (rates.wal - rates.apply).max(0.0);
    Finding::warning(
        Code::ApplyBehind,
        format!(
            "the destination is not keeping up with the source in {db:?}: over the last {:.0} s \
             the source wrote {:.1} MB/min of WAL and the subscription {subscription} applied \
             {:.1} MB/min, so the lag grew from {:.0} MB to {:.0} MB ({:.0} MB a minute); at \
             these rates it never drains and cutover ready cannot be reached",
            rates.seconds,
            mb(rates.wal * 60.0),
            mb(rates.apply * 60.0),
            mb(rates.lag_then as f64),
            mb(rates.lag_now as f64),
            mb(growth * 60.0),
        ),
        "nothing is lost (the slot keeps every change), but the source keeps that WAL until the \
         lag drains. On the destination, see what the apply worker waits on (SELECT wait_event_type, \
         wait_event, state FROM pg_stat_activity WHERE backend_type LIKE 'logical replication%'): \
         a lock (a session holding a table: end it), I/O (a faster disk, or fewer secondary \
         indexes until cutover), or tables with REPLICA IDENTITY FULL (every UPDATE and DELETE \
         scans the table: give them a primary key). Large transactions apply faster with \
         streaming = parallel (PostgreSQL 16 or later on the source; \
         max_parallel_apply_workers_per_subscription on the destination). Otherwise lower the \
         write rate on the source (batch jobs to a quieter hour) until the lag drains",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1024 * 1024;
    const WINDOW: Duration = Duration::from_secs(180);

    /// A look `s` seconds in with the source at `wal_mb` and the slot at `confirmed_mb`.
    fn look(
        trend: &mut LagTrend,
        t0: Instant,
        s: u64,
        wal_mb: u64,
        confirmed_mb: u64,
    ) -> Option<Rates> {
        trend.record(
            Some(Positions {
                wal: wal_mb * MB,
                confirmed: confirmed_mb * MB,
            }),
            t0 + Duration::from_secs(s),
            WINDOW,
        )
    }

    #[test]
    fn a_lag_that_grows_for_the_whole_window_is_reported_with_both_rates() {
        let (mut trend, t0) = (LagTrend::default(), Instant::now());
        // The source writes 2 MB/s, the destination applies 1 MB/s.
        let mut last = None;
        for s in (0..=180).step_by(5) {
            last = look(&mut trend, t0, s, 1000 + 2 * s, 1000 + s);
            if s < 180 {
                assert_eq!(last, None, "not before a whole window ({s} s)");
            }
        }
        let rates = last.expect("grew for 180 s");
        assert!((rates.wal - 2.0 * MB as f64).abs() < 1.0);
        assert!((rates.apply - MB as f64).abs() < 1.0);
        assert_eq!((rates.lag_then, rates.lag_now), (0, 180 * MB));
        let text = finding("sub", "shop", &rates).message;
        assert!(
            text.contains("wrote 120.0 MB/min of WAL")
                && text.contains("applied 60.0 MB/min")
                && text.contains("60 MB a minute"),
            "{text}"
        );
        // Still growing a minute later: still reported, over the last window only.
        let rates = look(&mut trend, t0, 240, 1480, 1240).expect("still growing");
        assert!((rates.seconds - 180.0).abs() < 1e-9);
    }

    #[test]
    fn a_burst_that_drains_or_a_steady_lag_is_not_reported() {
        let (mut trend, t0) = (LagTrend::default(), Instant::now());
        // The lag rises to 200 MB in the first minute, then drains: up over the window's first
        // half, down over its second.
        for s in (0..=60).step_by(5) {
            assert_eq!(
                look(&mut trend, t0, s, 1000 + 5 * s, 1000 + 5 * s / 3),
                None
            );
        }
        for s in (65..=200).step_by(5) {
            let wal = 1300 + (s - 60);
            let confirmed = (1100 + 3 * (s - 60)).min(wal);
            assert_eq!(look(&mut trend, t0, s, wal, confirmed), None, "{s} s");
        }
        // A lag that stays at 500 MB: both rates equal.
        let (mut trend, t0) = (LagTrend::default(), Instant::now());
        for s in (0..=400).step_by(5) {
            assert_eq!(look(&mut trend, t0, s, 2000 + 3 * s, 1500 + 3 * s), None);
        }
        // Growth under the noise floor: 10 MB over the window.
        let (mut trend, t0) = (LagTrend::default(), Instant::now());
        for s in (0..=180).step_by(10) {
            assert_eq!(look(&mut trend, t0, s, 1000 + s, 1000 + s - s / 18), None);
        }
    }

    #[test]
    fn no_subscription_starts_the_history_again() {
        let (mut trend, t0) = (LagTrend::default(), Instant::now());
        for s in (0..=170).step_by(10) {
            look(&mut trend, t0, s, 1000 + 2 * s, 1000);
        }
        assert_eq!(
            trend.record(None, t0 + Duration::from_secs(175), WINDOW),
            None
        );
        assert_eq!(
            look(&mut trend, t0, 180, 1360, 1000),
            None,
            "one sample only"
        );
        assert_eq!(look(&mut trend, t0, 270, 1540, 1000), None, "half a window");
        assert!(look(&mut trend, t0, 360, 1720, 1000).is_some());
    }
}
