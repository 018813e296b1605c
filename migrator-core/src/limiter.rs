//! The source-load limiter: a token bucket over the bytes the initial copy reads from a source.
//!
//! One [`RateLimiter`] per mapping, shared by every copy worker of every database of it, so
//! `rate_limit_mb_per_s` caps the mapping as a whole. The limit can change while a copy runs
//! (dashboard, API), and the health guard can lower it further for a while ([`RateLimiter::
//! set_health_cap`]). Written by hand because the rate must change at run time and a take may be
//! larger than any burst (a copy chunk); the well-known crates fix the rate at construction or
//! cap a single take at the burst.
//!
//! The bucket lets a taker go into debt and sleep it off: concurrent workers each pay for what
//! they took, so together they hold the rate. The burst is a tenth of a second's worth, which
//! keeps any one-second window within a few percent of the limit.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::status::{CopyRate, in_force};

const MB: f64 = 1024.0 * 1024.0;
/// How far back the measured rate looks.
const WINDOW: Duration = Duration::from_secs(3);

/// Caps the bytes per second read from one mapping's source during the copy.
#[derive(Debug)]
pub struct RateLimiter {
    /// Configured limit in MB/s; 0 = none.
    limit_mb: AtomicU64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    refilled: Instant,
    /// Lower cap set by the health guard (bytes/s), with its reason.
    health: Option<(f64, String)>,
    total: u64,
    samples: VecDeque<(Instant, u64)>,
}

impl RateLimiter {
    pub fn new(limit_mb_per_s: u64) -> Self {
        RateLimiter {
            limit_mb: AtomicU64::new(limit_mb_per_s),
            state: Mutex::new(State {
                tokens: 0.0,
                refilled: Instant::now(),
                health: None,
                total: 0,
                samples: VecDeque::new(),
            }),
        }
    }

    /// Changes the limit (0 = none); workers follow from their next take.
    pub fn set_limit_mb(&self, limit_mb_per_s: u64) {
        self.limit_mb.store(limit_mb_per_s, Ordering::Relaxed);
    }

    pub fn limit_mb(&self) -> u64 {
        self.limit_mb.load(Ordering::Relaxed)
    }

    /// Sets (or with `None` lifts) the health guard's cap in bytes per second.
    pub fn set_health_cap(&self, cap: Option<(f64, String)>) {
        self.lock().health = cap;
    }

    /// The health guard's cap in bytes per second, if any.
    pub fn health_cap(&self) -> Option<f64> {
        self.lock().health.as_ref().map(|(cap, _)| *cap)
    }

    /// One health probe's verdict (`Some(why)` when the source suffers): halves the cap (from
    /// what is read now, never below 1 MB/s) while unhealthy, raises it by a quarter while
    /// healthy, and lifts it once it no longer holds anything back.
    pub fn health_verdict(&self, unhealthy: Option<String>) {
        let mut state = self.lock();
        let measured = measured(&state, Instant::now());
        state.health = match (unhealthy, state.health.take()) {
            (Some(reason), cap) => {
                let base = cap.map_or(measured, |(c, _)| c.min(measured.max(MB)));
                Some(((base / 2.0).max(MB), reason))
            }
            (None, Some((cap, reason))) => {
                let limit = self.limit_mb() as f64 * MB;
                let raised = cap * 1.25;
                let lifted = (limit > 0.0 && raised >= limit) || raised > 4.0 * measured.max(MB);
                (!lifted).then_some((raised, reason))
            }
            (None, None) => None,
        };
    }

    /// The rate in force in bytes per second, or `None` for unlimited.
    fn effective(&self, state: &State) -> Option<f64> {
        in_force(
            self.limit_mb() as f64 * MB,
            state.health.as_ref().map(|(cap, _)| *cap),
        )
    }

    /// Accounts for `bytes` read, sleeping as long as the limit needs.
    pub async fn take(&self, bytes: u64) {
        let wait = {
            let mut state = self.lock();
            let now = Instant::now();
            state.total += bytes;
            let total = state.total;
            if state
                .samples
                .back()
                .is_none_or(|(at, _)| now.duration_since(*at) >= Duration::from_millis(100))
            {
                state.samples.push_back((now, total));
                while state
                    .samples
                    .front()
                    .is_some_and(|(at, _)| now.duration_since(*at) > WINDOW)
                {
                    state.samples.pop_front();
                }
            }
            match self.effective(&state) {
                None => {
                    state.tokens = 0.0;
                    state.refilled = now;
                    Duration::ZERO
                }
                Some(rate) => {
                    let elapsed = now.duration_since(state.refilled).as_secs_f64();
                    state.refilled = now;
                    state.tokens = (state.tokens + elapsed * rate).min(rate / 10.0);
                    state.tokens -= bytes as f64;
                    if state.tokens < 0.0 {
                        Duration::from_secs_f64(-state.tokens / rate)
                    } else {
                        Duration::ZERO
                    }
                }
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Bytes per second over the last few seconds (0 when nothing was read lately).
    pub fn measured(&self) -> f64 {
        measured(&self.lock(), Instant::now())
    }

    pub fn snapshot(&self) -> CopyRate {
        let bytes_per_second = self.measured();
        let state = self.lock();
        CopyRate {
            bytes_per_second,
            limit_mb_per_s: self.limit_mb(),
            health_cap_mb_per_s: state.health.as_ref().map(|(cap, _)| cap / MB),
            health_reason: state.health.as_ref().map(|(_, why)| why.clone()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Bytes per second over the samples of the last few seconds, as of `now`.
fn measured(state: &State, now: Instant) -> f64 {
    match (state.samples.front(), state.samples.back()) {
        (Some((first, from)), Some((_, to))) if now.duration_since(*first) <= WINDOW * 2 => {
            let seconds = now.duration_since(*first).as_secs_f64();
            if seconds > 0.0 {
                (to - from) as f64 / seconds
            } else {
                0.0
            }
        }
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn holds_the_limit_across_concurrent_takers() {
        let limiter = std::sync::Arc::new(RateLimiter::new(10));
        let start = tokio::time::Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let limiter = limiter.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..40 {
                    limiter.take(256 * 1024).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // 4 x 40 x 256 KiB = 40 MiB at 10 MiB/s: 4 s, less the first tenth-second burst.
        let secs = start.elapsed().as_secs_f64();
        assert!((3.8..=4.2).contains(&secs), "took {secs} s");
    }

    #[tokio::test(start_paused = true)]
    async fn unlimited_never_waits_and_a_health_cap_applies_without_a_limit() {
        let limiter = RateLimiter::new(0);
        let start = tokio::time::Instant::now();
        limiter.take(1 << 30).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        limiter.set_health_cap(Some((MB, "standby lag".into())));
        let start = tokio::time::Instant::now();
        limiter.take(2 * MB as u64).await;
        let secs = start.elapsed().as_secs_f64();
        assert!((1.8..=2.1).contains(&secs), "took {secs} s");
        let snapshot = limiter.snapshot();
        assert_eq!(snapshot.health_cap_mb_per_s, Some(1.0));
        assert_eq!(snapshot.health_reason.as_deref(), Some("standby lag"));
    }

    #[test]
    fn the_health_guard_halves_and_then_lifts_the_cap() {
        let limiter = RateLimiter::new(0);
        limiter.health_verdict(Some("standby 900 MB behind".into()));
        let cap = limiter.health_cap().expect("capped");
        assert_eq!(cap, MB, "floor when nothing was measured yet");
        limiter.health_verdict(None);
        assert_eq!(limiter.health_cap(), Some(cap * 1.25));
        assert_eq!(
            limiter.snapshot().health_reason.as_deref(),
            Some("standby 900 MB behind")
        );
        for _ in 0..10 {
            limiter.health_verdict(None);
        }
        assert_eq!(limiter.health_cap(), None);
    }

    #[test]
    fn the_limit_in_force_is_the_lower_of_limit_and_cap() {
        let rate = |limit, cap| CopyRate {
            limit_mb_per_s: limit,
            health_cap_mb_per_s: cap,
            ..CopyRate::default()
        };
        assert_eq!(rate(50, Some(20.0)).in_force_mb_per_s(), Some(20.0));
        assert_eq!(rate(10, Some(20.0)).in_force_mb_per_s(), Some(10.0));
        assert_eq!(rate(0, Some(2.0)).in_force_mb_per_s(), Some(2.0));
        assert_eq!(rate(0, None).in_force_mb_per_s(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lowered_limit_applies_to_the_next_take() {
        let limiter = RateLimiter::new(100);
        limiter.take(10 * MB as u64).await;
        limiter.set_limit_mb(1);
        let start = tokio::time::Instant::now();
        limiter.take(MB as u64).await;
        let secs = start.elapsed().as_secs_f64();
        assert!(secs >= 0.85, "took {secs} s");
    }
}
