//! Timing events turned into histograms.
//!
//! Recording is on the pool's hot path (an acquire-wait sample per `get`), so each
//! histogram is a set of per-thread-sharded atomic bucket counters: one bucket
//! increment and one sum increment per event, on cache lines a thread shares with few
//! others. Nothing is buffered and nothing allocates; the exposition is written from
//! the counters at scrape time.

use crossbeam_utils::CachePadded;
use poolside_core::{EventHook, Timing};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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

/// Shards per histogram: threads spread over them so concurrent recorders rarely
/// write the same cache line.
const SHARDS: usize = 8;

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn shard_index() -> usize {
    SHARD
        .try_with(|s| {
            if s.get() == usize::MAX {
                s.set(NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS);
            }
            s.get()
        })
        .unwrap_or(0)
}

/// One shard: a counter per bucket (the last is `+Inf`), then the sum in nanoseconds,
/// padded to whole cache lines so two shards never share one.
struct Shard {
    cells: Box<[AtomicU64]>,
}

/// One timing's histogram.
pub(crate) struct AtomicHistogram {
    shards: Box<[CachePadded<Shard>]>,
}

impl AtomicHistogram {
    fn new(buckets: usize) -> Self {
        // buckets + `+Inf` + sum, rounded up to 16 cells (two 64-byte lines).
        let cells = (buckets + 2).div_ceil(16) * 16;
        let shards = (0..SHARDS)
            .map(|_| {
                CachePadded::new(Shard { cells: (0..cells).map(|_| AtomicU64::new(0)).collect() })
            })
            .collect();
        AtomicHistogram { shards }
    }

    #[inline]
    fn record(&self, bounds: &[u64], elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = bounds.partition_point(|&bound| bound < nanos);
        let cells = &self.shards[shard_index()].cells;
        cells[bucket].fetch_add(1, Ordering::Relaxed);
        // Zero waits (a connection was idle) are the common case: skip the sum. A
        // sample adds at most a day to the sum, so one absurd duration cannot wrap it;
        // the sum (like any Prometheus counter) may still wrap after centuries of
        // summed time, which `rate()` reads as a reset.
        if nanos != 0 {
            cells[bounds.len() + 1].fetch_add(nanos.min(MAX_SUM_SAMPLE_NANOS), Ordering::Relaxed);
        }
    }

    /// Per-bucket counts (not cumulative; the last is `+Inf`) and the sum in
    /// nanoseconds.
    fn totals(&self, buckets: usize) -> (Vec<u64>, u128) {
        let mut counts = vec![0u64; buckets + 1];
        let mut sum = 0u128;
        for shard in self.shards.iter() {
            for (total, cell) in counts.iter_mut().zip(shard.cells.iter()) {
                *total += cell.load(Ordering::Relaxed);
            }
            sum += u128::from(shard.cells[buckets + 1].load(Ordering::Relaxed));
        }
        (counts, sum)
    }
}

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

/// The histograms of one pool, one per [`Timing`].
pub(crate) struct TimingHistograms {
    bounds: Box<[u64]>,
    own: Box<[AtomicHistogram]>,
    #[cfg(feature = "facade")]
    pub(crate) global: std::sync::OnceLock<crate::facade::GlobalTimings>,
}

impl TimingHistograms {
    /// `bounds` are strictly increasing upper bounds in nanoseconds (validated by the
    /// builder).
    pub(crate) fn new(bounds: &[u64]) -> Self {
        TimingHistograms {
            bounds: bounds.into(),
            own: Timing::ALL.iter().map(|_| AtomicHistogram::new(bounds.len())).collect(),
            #[cfg(feature = "facade")]
            global: std::sync::OnceLock::new(),
        }
    }

    /// The totals of `timing`, or `None` for a timing this crate does not know.
    pub(crate) fn totals(&self, timing: Timing) -> Option<HistogramTotals> {
        let histogram = &self.own[index(timing)?];
        let (counts, sum_nanos) = histogram.totals(self.bounds.len());
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
        self.own[i].record(&self.bounds, elapsed);
        #[cfg(feature = "facade")]
        if let Some(global) = self.global.get() {
            global.record(i, elapsed);
        }
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
        let h = AtomicHistogram::new(bounds.len());
        h.record(&bounds, Duration::from_nanos(1_000)); // exactly 1 µs: le="0.000001"
        h.record(&bounds, Duration::from_nanos(1_001));
        h.record(&bounds, Duration::from_secs(60)); // beyond the last bound: +Inf
        h.record(&bounds, Duration::MAX); // saturates, still counted
        let (buckets, sum) = h.totals(bounds.len());
        assert_eq!(buckets[0], 1);
        assert_eq!(buckets[1], 1);
        assert_eq!(buckets[bounds.len()], 2);
        assert_eq!(buckets.iter().sum::<u64>(), 4);
        assert_eq!(sum, 60_000_002_001 + MAX_SUM_SAMPLE_NANOS as u128);
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
