//! Timing events turned into histograms.
//!
//! Recording is on the pool's hot path (an acquire-wait sample per `get`), so the
//! histograms are kept here as sharded atomic bucket counters — one bucket increment
//! and one sum increment per event, on a cache line the thread shares with few others —
//! and rendered in the Prometheus text format at scrape time. A `metrics` histogram
//! handle would buffer every raw sample (allocating blocks as it goes) until the next
//! render, which measured 20–30% of a no-op connection pool's get + release
//! (`metrics` bench before commit 4577d9c; see docs/metrics.md).

use crate::naming::histogram_name;
use crate::registry::pool_key;
use crossbeam_utils::CachePadded;
use metrics::{Histogram, Key, Metadata};
use poolside_core::{EventHook, Timing};
use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Histogram bucket upper bounds in seconds: 1 µs to 30 s, roughly ×2.5 apart, so
/// `histogram_quantile` works from sub-millisecond waits to multi-second dials.
pub(crate) const BUCKETS_SECONDS: [f64; 20] = [
    1e-6, 2.5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2,
    0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

/// The same bounds in nanoseconds, for an integer comparison per event.
const BUCKETS_NANOS: [u64; 20] = {
    let mut nanos = [0u64; 20];
    let mut i = 0;
    while i < 20 {
        nanos[i] = (BUCKETS_SECONDS[i] * 1e9) as u64;
        i += 1;
    }
    nanos
};

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

#[derive(Default)]
struct Shard {
    /// `buckets[i]` counts samples in `(bound[i-1], bound[i]]`; the last is `+Inf`.
    buckets: [AtomicU64; BUCKETS_NANOS.len() + 1],
    sum_nanos: AtomicU64,
}

/// One timing's histogram.
#[derive(Default)]
pub(crate) struct AtomicHistogram {
    shards: [CachePadded<Shard>; SHARDS],
}

impl AtomicHistogram {
    #[inline]
    pub(crate) fn record(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BUCKETS_NANOS.partition_point(|&bound| bound < nanos);
        let shard = &self.shards[shard_index()];
        shard.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        // Zero waits (a connection was idle) are the common case: skip the sum.
        if nanos != 0 {
            shard.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        }
    }

    /// Per-bucket counts (not cumulative) and the sum in nanoseconds.
    fn totals(&self) -> ([u64; BUCKETS_NANOS.len() + 1], u128) {
        let mut buckets = [0u64; BUCKETS_NANOS.len() + 1];
        let mut sum = 0u128;
        for shard in &self.shards {
            for (total, bucket) in buckets.iter_mut().zip(&shard.buckets) {
                *total += bucket.load(Ordering::Relaxed);
            }
            sum += u128::from(shard.sum_nanos.load(Ordering::Relaxed));
        }
        (buckets, sum)
    }
}

/// The histograms of one pool, one per [`Timing`].
pub(crate) struct TimingHistograms {
    own: [AtomicHistogram; Timing::ALL.len()],
    /// Keys for the global recorder, resolved on first use so the application may
    /// install its recorder after building the pool.
    global: Option<([Key; Timing::ALL.len()], [OnceLock<Histogram>; Timing::ALL.len()])>,
}

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

impl TimingHistograms {
    pub(crate) fn new(kind: &'static str, pool: &str, forward_to_global: bool) -> Self {
        let key = |t: Timing| pool_key(histogram_name(kind, t.name()), pool, kind);
        let global = forward_to_global.then(|| (Timing::ALL.map(key), Default::default()));
        TimingHistograms { own: Default::default(), global }
    }

    /// The Prometheus text of every timing that has samples, one family each.
    pub(crate) fn render(&self, kind: &str, pool: &str) -> String {
        let mut out = String::new();
        for (timing, histogram) in Timing::ALL.iter().zip(&self.own) {
            let (buckets, sum_nanos) = histogram.totals();
            let count: u64 = buckets.iter().sum();
            if count == 0 {
                continue;
            }
            let name = histogram_name(kind, timing.name());
            let labels = format!("pool=\"{pool}\",kind=\"{kind}\"");
            let _ = writeln!(out, "# HELP {name} {}", timing.help());
            let _ = writeln!(out, "# TYPE {name} histogram");
            let mut cumulative = 0;
            for (bound, n) in BUCKETS_SECONDS.iter().zip(&buckets) {
                cumulative += n;
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
            }
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", sum_nanos as f64 / 1e9);
            let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
            out.push('\n');
        }
        out
    }
}

#[inline]
fn index(timing: Timing) -> usize {
    // `Timing::ALL` order; a timing added later falls back to a linear search.
    match timing {
        Timing::AcquireWait => 0,
        Timing::Dial => 1,
        Timing::QueueWait => 2,
        Timing::JobRun => 3,
        other => Timing::ALL.iter().position(|&t| t == other).unwrap_or(0),
    }
}

impl EventHook for TimingHistograms {
    #[inline]
    fn on_timing(&self, timing: Timing, elapsed: Duration) {
        let i = index(timing);
        self.own[i].record(elapsed);
        if let Some((keys, handles)) = &self.global {
            handles[i]
                .get_or_init(|| {
                    metrics::with_recorder(|r| r.register_histogram(&keys[i], &METADATA))
                })
                .record(elapsed.as_secs_f64());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_follows_the_order_of_all() {
        for (i, timing) in Timing::ALL.iter().enumerate() {
            assert_eq!(index(*timing), i);
        }
    }

    #[test]
    fn samples_land_in_the_first_bucket_that_holds_them() {
        let h = AtomicHistogram::default();
        h.record(Duration::from_nanos(1_000)); // exactly 1 µs: the first bucket (le="0.000001")
        h.record(Duration::from_nanos(1_001));
        h.record(Duration::from_secs(60)); // beyond the last bound: +Inf
        let (buckets, sum) = h.totals();
        assert_eq!(buckets[0], 1);
        assert_eq!(buckets[1], 1);
        assert_eq!(buckets[BUCKETS_NANOS.len()], 1);
        assert_eq!(sum, 60_000_002_001);
    }

    #[test]
    fn threads_on_different_shards_add_up() {
        let h = std::sync::Arc::new(AtomicHistogram::default());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let h = h.clone();
                std::thread::spawn(move || {
                    (0..1000).for_each(|_| h.record(Duration::from_micros(3)))
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let (buckets, sum) = h.totals();
        assert_eq!(buckets.iter().sum::<u64>(), 8000);
        assert_eq!(sum, 8000 * 3000);
    }
}
