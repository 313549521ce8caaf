//! The failover circuit breaker's memory: failures of each kind counted over a sliding
//! time window, kept in a ring of buckets so recording and reading are O(buckets) and
//! never allocate.

use std::fmt;
use std::time::Duration;
use tokio::time::Instant;

/// What went wrong on the primary, as the [`FailoverPool`](crate::failover::FailoverPool)'s
/// breaker counts it. Each kind has its own threshold.
///
/// ```
/// use poolside_connpool::failover::Failure;
/// assert_eq!(Failure::ConnectError.to_string(), "connect error");
/// assert_eq!(Failure::ALL.len(), 4);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// The primary had no connection to give: every slot taken under `FailFast`, or
    /// the wait timed out.
    Exhaustion,
    /// Opening a connection to the primary failed or timed out.
    ConnectError,
    /// A primary connection failed its checkout health check (or the check timed out).
    HealthCheck,
    /// A request on a primary connection failed or timed out: reported by
    /// [`FailoverConn::report_failure`](crate::failover::FailoverConn::report_failure) or by
    /// [`FailoverPool::run`](crate::failover::FailoverPool::run).
    Request,
}

impl Failure {
    /// Every kind, in a fixed order.
    pub const ALL: [Failure; 4] =
        [Failure::Exhaustion, Failure::ConnectError, Failure::HealthCheck, Failure::Request];

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Failure::Exhaustion => "exhaustion",
            Failure::ConnectError => "connect error",
            Failure::HealthCheck => "health check failure",
            Failure::Request => "request failure",
        })
    }
}

/// The window is cut into this many buckets: failures leave it in steps of a tenth of
/// its length, a granularity no breaker needs finer.
const BUCKETS: usize = 10;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Which bucket-length tick (since the window's origin) these counts belong to.
    tick: u64,
    counts: [u32; Failure::ALL.len()],
}

/// Failures per kind over the last `length` of time.
#[derive(Debug)]
pub(crate) struct SlidingWindow {
    origin: Instant,
    bucket_width: Duration,
    buckets: [Bucket; BUCKETS],
}

impl SlidingWindow {
    /// A window of `length` (> 0) starting at `origin`.
    pub(crate) fn new(length: Duration, origin: Instant) -> Self {
        let bucket_width = (length / BUCKETS as u32).max(Duration::from_nanos(1));
        // Tick 0 is "now" at the origin; marking every bucket as belonging to a tick
        // that can never be current makes them all start empty.
        let stale = Bucket { tick: u64::MAX, counts: [0; Failure::ALL.len()] };
        SlidingWindow { origin, bucket_width, buckets: [stale; BUCKETS] }
    }

    fn tick(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.origin);
        (elapsed.as_nanos() / self.bucket_width.as_nanos()) as u64
    }

    /// Counts one failure at `now` and returns how many of that kind the window holds.
    pub(crate) fn record(&mut self, failure: Failure, now: Instant) -> u32 {
        let tick = self.tick(now);
        let bucket = &mut self.buckets[(tick % BUCKETS as u64) as usize];
        if bucket.tick != tick {
            *bucket = Bucket { tick, counts: [0; Failure::ALL.len()] };
        }
        bucket.counts[failure.index()] = bucket.counts[failure.index()].saturating_add(1);
        self.count(failure, now)
    }

    /// How many failures of this kind happened within the window ending at `now`.
    pub(crate) fn count(&self, failure: Failure, now: Instant) -> u32 {
        let tick = self.tick(now);
        let oldest = tick.saturating_sub(BUCKETS as u64 - 1);
        self.buckets
            .iter()
            .filter(|b| b.tick != u64::MAX && (oldest..=tick).contains(&b.tick))
            .map(|b| b.counts[failure.index()])
            .fold(0u32, u32::saturating_add)
    }

    /// Forgets everything (after a trip or a recovery, the old failures say nothing).
    pub(crate) fn clear(&mut self) {
        for bucket in &mut self.buckets {
            bucket.tick = u64::MAX;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn failures_leave_the_window_after_its_length() {
        let start = Instant::now();
        let mut window = SlidingWindow::new(SECOND, start);
        assert_eq!(window.record(Failure::ConnectError, start), 1);
        assert_eq!(window.record(Failure::ConnectError, start + SECOND / 2), 2);
        assert_eq!(window.count(Failure::Exhaustion, start + SECOND / 2), 0, "kinds are apart");
        assert_eq!(window.count(Failure::ConnectError, start + SECOND * 9 / 10), 2);
        // The first failure's bucket leaves the window one second after it began.
        assert_eq!(window.count(Failure::ConnectError, start + SECOND), 1);
        assert_eq!(window.count(Failure::ConnectError, start + SECOND * 3 / 2), 0);
        window.record(Failure::Request, start + SECOND * 2);
        window.clear();
        assert_eq!(window.count(Failure::Request, start + SECOND * 2), 0);
    }

    #[test]
    fn a_bucket_reused_after_a_lap_starts_empty() {
        let start = Instant::now();
        let mut window = SlidingWindow::new(SECOND, start);
        window.record(Failure::HealthCheck, start);
        // Exactly one lap later the same bucket index is reused for a new tick.
        assert_eq!(window.record(Failure::HealthCheck, start + SECOND), 1);
    }

    proptest! {
        /// The ring agrees with a plain list of timestamps: a failure counts while
        /// its bucket's start lies within the last `BUCKETS` bucket widths.
        #[test]
        fn agrees_with_a_list_of_timestamps(steps in prop::collection::vec((0u64..400, 0usize..4), 1..200)) {
            let start = Instant::now();
            let width = Duration::from_millis(100);
            let mut window = SlidingWindow::new(width * BUCKETS as u32, start);
            let mut model: Vec<(u64, Failure)> = Vec::new();
            let mut now_ms = 0u64;
            for (advance, kind) in steps {
                now_ms += advance;
                let now = start + Duration::from_millis(now_ms);
                let failure = Failure::ALL[kind];
                window.record(failure, now);
                model.push((now_ms / 100, failure));
                let tick = now_ms / 100;
                for probe in Failure::ALL {
                    let expected = model
                        .iter()
                        .filter(|(t, f)| *f == probe && tick - t < BUCKETS as u64)
                        .count() as u32;
                    prop_assert_eq!(window.count(probe, now), expected);
                }
            }
        }
    }
}
