//! Replication lag of each mapping over the last hour, for the Metrics tab's chart: sampled from
//! the snapshots as they are published, kept in memory (a restart starts a new history).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use migrator_core::status::Snapshot;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// One sample: the mapping's total lag in bytes and its largest lag in time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LagSample {
    pub at: SystemTime,
    pub bytes: u64,
    pub seconds: f64,
}

/// Samples per mapping; clones share them.
#[derive(Clone)]
pub struct LagHistory {
    samples: Arc<Mutex<HashMap<String, VecDeque<LagSample>>>>,
    keep: Duration,
    spacing: Duration,
}

impl Default for LagHistory {
    /// The last hour, at most one sample every 5 s (720 per mapping).
    fn default() -> Self {
        LagHistory::new(Duration::from_secs(3600), Duration::from_secs(5))
    }
}

impl LagHistory {
    pub fn new(keep: Duration, spacing: Duration) -> Self {
        LagHistory {
            samples: Arc::default(),
            keep,
            spacing,
        }
    }

    /// How far back samples go.
    pub fn keep(&self) -> Duration {
        self.keep
    }

    /// Records `snapshot`'s lag for each mapping that reports one (at most one sample per
    /// `spacing`; older than `keep` is dropped).
    pub fn record(&self, snapshot: &Snapshot) {
        let at = snapshot.generated_at.unwrap_or_else(SystemTime::now);
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        for mapping in &snapshot.mappings {
            let Some(lag) = mapping.lag() else {
                continue;
            };
            let sample = LagSample {
                at,
                bytes: lag.bytes,
                seconds: lag.seconds,
            };
            let ring = samples.entry(mapping.name.clone()).or_default();
            let due = ring.back().is_none_or(|last| {
                at.duration_since(last.at)
                    .is_ok_and(|since| since >= self.spacing)
            });
            if due {
                ring.push_back(sample);
            }
            while ring
                .front()
                .is_some_and(|first| at.duration_since(first.at).is_ok_and(|age| age > self.keep))
            {
                ring.pop_front();
            }
        }
    }

    /// The mapping's samples, oldest first.
    pub fn samples(&self, mapping: &str) -> Vec<LagSample> {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples
            .get(mapping)
            .map(|ring| ring.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Records every snapshot published on `status` until `shutdown`.
    pub async fn follow(
        self,
        mut status: watch::Receiver<Arc<Snapshot>>,
        shutdown: CancellationToken,
    ) {
        loop {
            let snapshot = status.borrow_and_update().clone();
            self.record(&snapshot);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = status.changed() => if changed.is_err() { return },
            }
        }
    }
}
