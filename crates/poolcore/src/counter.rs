//! Counters sharded by thread, so that threads counting at once never write the same
//! cache line.
//!
//! Every thread takes one of [`Shard::OWNED`] shard indexes on its first count and
//! gives it back when it exits. Invariant: an owned index is held by at most one live
//! thread, so in *every* sharded counter only that thread writes the cells of its
//! shard, and it may update them with a plain load and store instead of a
//! read-modify-write. Threads beyond [`Shard::OWNED`], and code running while its
//! thread's slot is being torn down, count in one shared shard with atomic additions.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// Owned shard indexes not held by any live thread.
static FREE: Mutex<Vec<usize>> = Mutex::new(Vec::new());
/// Owned shard indexes never handed out yet.
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A thread's shard index, taken on its first count and given back when it exits.
///
/// A thread gives its index back only from this slot's destructor, after which it can
/// no longer reach the slot (`try_with` fails) and counts in the shared shard instead.
struct Slot(usize);

impl Slot {
    fn take() -> Slot {
        let free = FREE.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let index = free.unwrap_or_else(|| {
            NEXT.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < Shard::OWNED).then_some(n + 1)
            })
            .unwrap_or(Shard::SHARED.0)
        });
        Slot(index)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.0 < Shard::OWNED {
            // The mutex orders this thread's last writes before the next owner's.
            FREE.lock().unwrap_or_else(PoisonError::into_inner).push(self.0);
        }
    }
}

thread_local! {
    static SLOT: Slot = Slot::take();
}

/// The calling thread's shard: which cell of every sharded counter it writes.
///
/// Exposed for structures that lay out their own per-shard cells (a histogram keeps a
/// block of bucket counters per shard); a plain count is a [`ShardedCounter`].
///
/// ```
/// use poolside_core::Shard;
/// use std::sync::atomic::AtomicU64;
///
/// let cells: Vec<AtomicU64> = (0..Shard::COUNT).map(|_| AtomicU64::new(0)).collect();
/// let shard = Shard::current();
/// shard.add(&cells[shard.index()], 3);
/// assert_eq!(cells.iter().map(|c| c.load(std::sync::atomic::Ordering::Relaxed)).sum::<u64>(), 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard(usize);

impl Shard {
    /// Shards owned by one live thread at a time.
    pub const OWNED: usize = 32;
    /// Every shard: the owned ones, then the shared one.
    pub const COUNT: usize = Shard::OWNED + 1;
    /// The shard of threads beyond [`OWNED`](Self::OWNED), updated with atomic additions.
    pub const SHARED: Shard = Shard(Shard::OWNED);

    /// The calling thread's shard (the shared one while its thread-local slot is
    /// being torn down).
    ///
    /// ```
    /// let shard = poolside_core::Shard::current();
    /// assert!(shard.index() < poolside_core::Shard::COUNT);
    /// assert_eq!(shard, poolside_core::Shard::current(), "a thread keeps its shard");
    /// ```
    #[inline]
    pub fn current() -> Shard {
        Shard(SLOT.try_with(|slot| slot.0).unwrap_or(Shard::OWNED))
    }

    /// The shard's index, below [`COUNT`](Self::COUNT).
    ///
    /// ```
    /// assert_eq!(poolside_core::Shard::SHARED.index(), poolside_core::Shard::OWNED);
    /// ```
    #[inline]
    pub fn index(self) -> usize {
        self.0
    }

    /// Adds `n` (wrapping) to `cell`, a cell of this shard. Callers pass only a shard
    /// obtained from [`current`](Self::current) on this thread, and a cell that belongs
    /// to that shard: an owned shard's cell is then written by this thread alone, with
    /// a plain load and store, and readers see the old or the new value.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    ///
    /// let cell = AtomicU64::new(u64::MAX);
    /// poolside_core::Shard::SHARED.add(&cell, 2);
    /// assert_eq!(cell.load(Ordering::Relaxed), 1, "wraps like any Prometheus counter");
    /// ```
    #[inline]
    pub fn add(self, cell: &AtomicU64, n: u64) {
        if self.0 < Shard::OWNED {
            cell.store(cell.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
        } else {
            cell.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// One counter cell, alone on a cache line pair so that neighbouring shards never
/// share a line.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Cell(AtomicU64);

/// A counter that many threads bump at once without contending: one cell per
/// [`Shard`], summed when read.
///
/// ```
/// use poolside_core::ShardedCounter;
/// use std::sync::Arc;
///
/// let acquires = Arc::new(ShardedCounter::new());
/// let threads: Vec<_> = (0..4)
///     .map(|_| {
///         let acquires = acquires.clone();
///         std::thread::spawn(move || (0..1000).for_each(|_| acquires.bump()))
///     })
///     .collect();
/// threads.into_iter().for_each(|t| t.join().unwrap());
/// assert_eq!(acquires.sum(), 4000);
/// ```
#[derive(Debug)]
pub struct ShardedCounter {
    cells: [Cell; Shard::COUNT],
}

impl Default for ShardedCounter {
    fn default() -> Self {
        ShardedCounter::new()
    }
}

impl ShardedCounter {
    /// A counter at zero.
    ///
    /// ```
    /// assert_eq!(poolside_core::ShardedCounter::new().sum(), 0);
    /// ```
    pub fn new() -> Self {
        ShardedCounter { cells: std::array::from_fn(|_| Cell::default()) }
    }

    /// Adds one, in the calling thread's shard.
    ///
    /// ```
    /// let hits = poolside_core::ShardedCounter::new();
    /// hits.bump();
    /// assert_eq!(hits.sum(), 1);
    /// ```
    #[inline]
    pub fn bump(&self) {
        self.add(1);
    }

    /// Adds `n` (wrapping), in the calling thread's shard.
    ///
    /// ```
    /// let bytes = poolside_core::ShardedCounter::new();
    /// bytes.add(4096);
    /// assert_eq!(bytes.sum(), 4096);
    /// ```
    #[inline]
    pub fn add(&self, n: u64) {
        let shard = Shard::current();
        shard.add(&self.cells[shard.index()].0, n);
    }

    /// The total of every shard now (wrapping). Each cell is read once: a sum taken
    /// while others count includes each of their additions or not, never half of one.
    ///
    /// ```
    /// let c = poolside_core::ShardedCounter::new();
    /// (0..3).for_each(|_| c.bump());
    /// assert_eq!(c.sum(), 3);
    /// ```
    pub fn sum(&self) -> u64 {
        self.cells.iter().fold(0u64, |total, c| total.wrapping_add(c.0.load(Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    #[test]
    fn more_threads_than_owned_shards_and_thread_churn_stay_exact() {
        let counter = Arc::new(ShardedCounter::new());
        // Waves of threads alive at once, more than the owned shards: some count in
        // the shared shard; each wave's exits free owned shards for the next wave.
        let threads_per_wave = Shard::OWNED + 8;
        for _wave in 0..3 {
            let barrier = Arc::new(Barrier::new(threads_per_wave));
            let threads: Vec<_> = (0..threads_per_wave)
                .map(|_| {
                    let (counter, barrier) = (counter.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        let shard = Shard::current(); // taken before any thread exits
                        barrier.wait(); // every thread alive holds its shard
                        (0..500).for_each(|_| counter.bump());
                        assert_eq!(Shard::current(), shard, "a thread keeps its shard");
                        shard
                    })
                })
                .collect();
            let shards: Vec<Shard> = threads.into_iter().map(|t| t.join().unwrap()).collect();
            let mut owned: Vec<usize> =
                shards.iter().filter(|s| **s != Shard::SHARED).map(|s| s.index()).collect();
            let before = owned.len();
            owned.sort_unstable();
            owned.dedup();
            assert_eq!(owned.len(), before, "two live threads held one owned shard");
        }
        assert_eq!(counter.sum(), 3 * threads_per_wave as u64 * 500);
    }

    #[test]
    fn a_sum_taken_while_threads_count_never_goes_backwards() {
        let counter = Arc::new(ShardedCounter::new());
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let counter = counter.clone();
                std::thread::spawn(move || (0..20_000).for_each(|_| counter.bump()))
            })
            .collect();
        let mut last = 0;
        while writers.iter().any(|w| !w.is_finished()) {
            let now = counter.sum();
            assert!(now >= last, "the sum went from {last} back to {now}");
            last = now;
        }
        writers.into_iter().for_each(|w| w.join().unwrap());
        assert_eq!(counter.sum(), 80_000);
    }

    #[test]
    fn cells_never_share_a_cache_line() {
        assert!(std::mem::align_of::<Cell>() >= 128);
        assert_eq!(std::mem::size_of::<ShardedCounter>(), Shard::COUNT * 128);
    }
}
