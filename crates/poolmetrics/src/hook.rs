//! Timing events turned into histograms.
//!
//! Recording is on the pool's hot path (an acquire-wait sample per `get`), so each
//! histogram is a set of per-thread shards of atomic bucket counters: one bucket
//! increment and one sum increment per event, in a shard that only the calling thread
//! writes (a plain load and store; threads beyond the owned shards share one shard
//! with atomic additions). Nothing is buffered and nothing allocates; the exposition
//! is written from the counters at scrape time.

use poolside_core::{EventHook, Shard, Timing};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Default histogram bucket upper bounds: 1 µs to 30 s, roughly ×2.5 apart, so
/// `histogram_quantile` works from sub-millisecond waits to multi-second dials.
pub const DEFAULT_BUCKETS: [Duration; 20] = [
    Duration::from_micros(1),
    Duration::from_nanos(2_500),
    Duration::from_micros(10),
    Duration::from_micros(25),
    Duration::from_micros(50),
    Duration::from_micros(100),
    Duration::from_micros(250),
    Duration::from_micros(500),
    Duration::from_millis(1),
    Duration::from_micros(2_500),
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(25),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(30),
];

/// The most one sample adds to a histogram's sum: 24 hours.
const MAX_SUM_SAMPLE_NANOS: u64 = 24 * 60 * 60 * 1_000_000_000;

/// Shards per histogram: one per [`Shard`] (poolcore's per-thread shards), so a
/// thread's bucket and sum increments go to cells only it writes (a plain load and
/// store), and threads beyond the owned shards share one shard with atomic additions.
const SHARDS: usize = Shard::COUNT;

/// What a histogram held at one scrape.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HistogramTotals {
    /// Cumulative counts per upper bound in nanoseconds, then the `+Inf` count.
    pub(crate) cumulative: Vec<(u64, u64)>,
    /// Every sample (the `+Inf` bucket).
    pub(crate) count: u64,
    /// Sum of all samples in seconds.
    pub(crate) sum_seconds: f64,
}

/// The histograms of one pool, one per [`Timing`], in one flat array of counters so
/// recording follows a single pointer.
///
/// Layout: for each timing, for each of the [`SHARDS`] shards, a block of `stride`
/// cells: one counter per bucket (the last is `+Inf`), then the sum in nanoseconds,
/// then padding. `stride` leaves at least a cache line of padding after a block's
/// counters, so two shards' counters never share a cache line.
pub(crate) struct TimingHistograms {
    bounds: Box<[u64]>,
    cells: Box<[AtomicU64]>,
    stride: usize,
    #[cfg(feature = "facade")]
    pub(crate) global: std::sync::OnceLock<crate::facade::GlobalTimings>,
}

impl TimingHistograms {
    /// `bounds` are strictly increasing upper bounds in nanoseconds (validated by the
    /// builder: at most [`MAX_BUCKETS`](crate::MAX_BUCKETS) of them).
    pub(crate) fn new(bounds: &[u64]) -> Self {
        // buckets + `+Inf` + sum, rounded up to a cache line of cells, plus one line.
        let stride = (bounds.len() + 2).div_ceil(8) * 8 + 8;
        let len = Timing::ALL.len() * SHARDS * stride;
        TimingHistograms {
            bounds: bounds.into(),
            cells: (0..len).map(|_| AtomicU64::new(0)).collect(),
            stride,
            #[cfg(feature = "facade")]
            global: std::sync::OnceLock::new(),
        }
    }

    /// The first cell of `timing`'s block in `shard`.
    #[inline]
    fn block(&self, timing: usize, shard: usize) -> usize {
        (timing * SHARDS + shard) * self.stride
    }

    #[inline]
    fn record(&self, timing: usize, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        // Every bound is above zero (the builder checks), so a zero wait — the common
        // case, a connection was idle — is in the first bucket without a search.
        let bucket = if nanos == 0 { 0 } else { self.bounds.partition_point(|&b| b < nanos) };
        let shard = Shard::current();
        let block = self.block(timing, shard.index());
        shard.add(&self.cells[block + bucket], 1);
        // A zero wait adds nothing to the sum: skip it. A sample adds at most a day to
        // the sum, so one absurd duration cannot wrap it;
        // the sum (like any Prometheus counter) may still wrap after centuries of
        // summed time, which `rate()` reads as a reset.
        if nanos != 0 {
            let sum = &self.cells[block + self.bounds.len() + 1];
            shard.add(sum, nanos.min(MAX_SUM_SAMPLE_NANOS));
        }
    }

    /// The totals of `timing`, or `None` for a timing this crate does not know.
    pub(crate) fn totals(&self, timing: Timing) -> Option<HistogramTotals> {
        let timing = index(timing)?;
        let buckets = self.bounds.len();
        let mut counts = vec![0u64; buckets + 1];
        let mut sum_nanos = 0u128;
        for shard in 0..SHARDS {
            let block = &self.cells[self.block(timing, shard)..][..buckets + 2];
            for (total, cell) in counts.iter_mut().zip(block) {
                *total += cell.load(Ordering::Relaxed);
            }
            sum_nanos += u128::from(block[buckets + 1].load(Ordering::Relaxed));
        }
        let mut running = 0;
        let cumulative = self
            .bounds
            .iter()
            .zip(&counts)
            .map(|(&bound, &n)| {
                running += n;
                (bound, running)
            })
            .collect();
        let count = counts.iter().sum();
        Some(HistogramTotals { cumulative, count, sum_seconds: sum_nanos as f64 / 1e9 })
    }
}

#[inline]
pub(crate) fn index(timing: Timing) -> Option<usize> {
    // `Timing::ALL` order; a timing added later falls back to a search.
    match timing {
        Timing::AcquireWait => Some(0),
        Timing::Dial => Some(1),
        Timing::QueueWait => Some(2),
        Timing::JobRun => Some(3),
        other => Timing::ALL.iter().position(|&t| t == other),
    }
}

impl EventHook for TimingHistograms {
    #[inline]
    fn on_timing(&self, timing: Timing, elapsed: Duration) {
        let Some(i) = index(timing) else { return };
        self.record(i, elapsed);
        #[cfg(feature = "facade")]
        if let Some(global) = self.global.get() {
            global.record(i, elapsed);
        }
    }

    /// Histograms need timings only: the pool skips its per-checkout connection
    /// events (and the clock read that times each checkin).
    fn wants_connection_events(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_bounds() -> Vec<u64> {
        DEFAULT_BUCKETS.iter().map(|d| d.as_nanos() as u64).collect()
    }

    #[test]
    fn index_follows_the_order_of_all() {
        for (i, timing) in Timing::ALL.iter().enumerate() {
            assert_eq!(index(*timing), Some(i));
        }
    }

    #[test]
    fn samples_land_in_the_first_bucket_that_holds_them() {
        let bounds = default_bounds();
        let h = TimingHistograms::new(&bounds);
        h.on_timing(Timing::Dial, Duration::from_nanos(1_000)); // exactly 1 µs: le="0.000001"
        h.on_timing(Timing::Dial, Duration::from_nanos(1_001));
        h.on_timing(Timing::Dial, Duration::from_secs(60)); // beyond the last bound: +Inf
        h.on_timing(Timing::Dial, Duration::MAX); // counted; adds a day to the sum
        h.on_timing(Timing::Dial, Duration::ZERO);
        let totals = h.totals(Timing::Dial).unwrap();
        assert_eq!(totals.cumulative[0], (1_000, 2), "zero and 1 µs");
        assert_eq!(totals.cumulative[1], (2_500, 3));
        assert_eq!(totals.cumulative.last().unwrap().1, 3);
        assert_eq!(totals.count, 5);
        let expected = (60_000_002_001 + MAX_SUM_SAMPLE_NANOS) as f64 / 1e9;
        assert!((totals.sum_seconds - expected).abs() < 1e-6, "{}", totals.sum_seconds);
        assert_eq!(h.totals(Timing::AcquireWait).unwrap().count, 0, "timings are separate");
    }

    #[test]
    fn more_threads_than_owned_shards_and_thread_churn_stay_exact() {
        let hooks = std::sync::Arc::new(TimingHistograms::new(&default_bounds()));
        // Waves of threads alive at once, more than the owned shards: some share the
        // shared shard; each wave's exits free owned shards for the next wave.
        for _wave in 0..3 {
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(Shard::OWNED + 8));
            let threads: Vec<_> = (0..Shard::OWNED + 8)
                .map(|_| {
                    let (h, barrier) = (hooks.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait(); // every thread alive holds its shard
                        (0..500).for_each(|_| h.on_timing(Timing::JobRun, Duration::from_nanos(7)))
                    })
                })
                .collect();
            threads.into_iter().for_each(|t| t.join().unwrap());
        }
        let totals = hooks.totals(Timing::JobRun).unwrap();
        let events = 3 * (Shard::OWNED as u64 + 8) * 500;
        assert_eq!(totals.count, events);
        assert!((totals.sum_seconds - events as f64 * 7e-9).abs() < 1e-9);
    }

    #[test]
    fn shards_never_share_a_cache_line() {
        for buckets in [1, 6, 7, 20, 64] {
            let h = TimingHistograms::new(&(1..=buckets as u64).collect::<Vec<_>>());
            let used = buckets + 2;
            assert!(h.stride >= used + 8, "{buckets}: a full line of padding after the counters");
            assert_eq!(h.cells.len(), Timing::ALL.len() * SHARDS * h.stride);
        }
    }

    #[test]
    fn threads_on_different_shards_add_up() {
        let hooks = std::sync::Arc::new(TimingHistograms::new(&default_bounds()));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let h = hooks.clone();
                std::thread::spawn(move || {
                    (0..1000).for_each(|_| h.on_timing(Timing::Dial, Duration::from_micros(3)))
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let totals = hooks.totals(Timing::Dial).unwrap();
        assert_eq!(totals.count, 8000);
        assert!((totals.sum_seconds - 0.024).abs() < 1e-12);
        assert_eq!(totals.cumulative.last().unwrap().1, 8000);
        assert_eq!(hooks.totals(Timing::JobRun).unwrap().count, 0);
    }
}
