//! Counters that the owning thread writes with plain stores and any thread can sum.
//!
//! A pool's per-thread counter block hangs off the thread's cache slot for the pool,
//! which every fast-path operation already holds: counting costs no thread-local
//! lookup of its own. That is why the pools do not use `poolside_core::ShardedCounter`
//! here, which finds the thread's shard through a thread-local on every bump.

use crossbeam_queue::SegQueue;
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The events a pool counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    Hit,
    Miss,
    Return,
    Rejected,
    DroppedFull,
    DroppedPanicked,
}

const EVENTS: usize = 6;

/// One thread's counters for one pool. Only that thread writes them, so an update is
/// a load and a store on a line no other thread writes: no lock prefix, no contention.
/// Aligned to a cache line pair so that blocks of different threads, allocated side by
/// side, never share a line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct CounterBlock {
    counts: [AtomicU64; EVENTS],
}

impl CounterBlock {
    /// Bumps a counter this thread owns. The store releases: a reader that sees it
    /// (with an acquiring load) also sees everything this thread counted before.
    #[inline]
    pub(crate) fn bump_owned(&self, event: Event) {
        let c = &self.counts[event as usize];
        c.store(c.load(Ordering::Relaxed) + 1, Ordering::Release);
    }

    /// Bumps a counter that several threads may share.
    #[inline]
    pub(crate) fn bump_shared(&self, event: Event) {
        self.counts[event as usize].fetch_add(1, Ordering::Release);
    }

    fn get(&self, event: Event) -> u64 {
        self.counts[event as usize].load(Ordering::Acquire)
    }
}

/// Every counter block of a pool, plus the totals of threads that have exited.
///
/// A thread registers its block the first time it uses the pool, and retires it at
/// exit. Neither may wait for another thread: threads that start together (a server's
/// workers, a benchmark's) reach both at the same moment, and a thread put to sleep on
/// a lock is woken onto the CPU of the thread that released it, where the two then
/// share one core for as long as the scheduler leaves them there. So a registering or
/// retiring thread only *queues* its block (lock-free) and folds the queues into the
/// list when the list's lock is free at once; [`totals`](Self::totals), which may wait,
/// folds whatever is still queued before it sums. A block is always in exactly one of
/// `joining`, `live`, or (its counts folded into `retired`) gone, so nothing is counted
/// twice or missed.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    live: Mutex<Vec<Arc<CounterBlock>>>,
    /// Blocks registered but not yet moved to `live`.
    joining: SegQueue<Arc<CounterBlock>>,
    /// Blocks of departed threads not yet folded into `retired`.
    leaving: SegQueue<Arc<CounterBlock>>,
    /// Threads without a cache slot for the pool count here (with atomic adds).
    pub(crate) shared: CounterBlock,
    retired: CounterBlock,
}

/// Summed counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) returns: u64,
    pub(crate) rejected: u64,
    pub(crate) dropped_full: u64,
    pub(crate) dropped_panicked: u64,
}

impl Counters {
    /// A block for a thread that just got a cache slot for the pool. Never waits.
    pub(crate) fn register(&self) -> Arc<CounterBlock> {
        let block = Arc::new(CounterBlock::default());
        self.joining.push(block.clone());
        if let Some(mut live) = self.live.try_lock() {
            self.fold(&mut live);
        }
        block
    }

    /// Folds a departing thread's block into the retired totals. Never waits.
    pub(crate) fn retire(&self, block: &Arc<CounterBlock>) {
        self.leaving.push(block.clone());
        if let Some(mut live) = self.live.try_lock() {
            self.fold(&mut live);
        }
    }

    /// Moves joining blocks to `live` and folds leaving ones into `retired`. Joining
    /// blocks go first: a block may join and leave between two folds.
    fn fold(&self, live: &mut Vec<Arc<CounterBlock>>) {
        while let Some(block) = self.joining.pop() {
            live.push(block);
        }
        while let Some(block) = self.leaving.pop() {
            if let Some(index) = live.iter().position(|b| Arc::ptr_eq(b, &block)) {
                live.swap_remove(index);
                for (i, count) in block.counts.iter().enumerate() {
                    self.retired.counts[i]
                        .fetch_add(count.load(Ordering::Acquire), Ordering::Release);
                }
            }
        }
    }

    /// The counters summed now. Consequences are read before their causes (a drop
    /// for a full store before returns, returns before gets), each with an acquiring
    /// load, so a snapshot never shows an effect without its cause: `dropped_full <=
    /// returns`, and without `attach`, `returns <= hits + misses`. No clamping needed.
    pub(crate) fn totals(&self) -> Totals {
        let mut live = self.live.lock();
        self.fold(&mut live);
        let sum = |event: Event| {
            self.shared.get(event)
                + self.retired.get(event)
                + live.iter().map(|b| b.get(event)).sum::<u64>()
        };
        let dropped_full = sum(Event::DroppedFull);
        let dropped_panicked = sum(Event::DroppedPanicked);
        let rejected = sum(Event::Rejected);
        let returns = sum(Event::Return);
        let misses = sum(Event::Miss);
        let hits = sum(Event::Hit);
        Totals { hits, misses, returns, rejected, dropped_full, dropped_panicked }
    }
}

#[cfg(test)]
mod tests {
    use super::{Counters, Event};
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn registering_and_retiring_never_wait_for_the_list_lock() {
        let counters = Counters::default();
        std::thread::scope(|s| {
            // Another thread is summing (or registering) right now: the lock is held.
            let held = counters.live.lock();
            let (done, finished) = mpsc::channel();
            let counters = &counters;
            s.spawn(move || {
                let block = counters.register();
                block.bump_owned(Event::Hit);
                counters.retire(&block);
                let again = counters.register();
                again.bump_owned(Event::Return);
                done.send(()).unwrap();
            });
            let waited = finished.recv_timeout(Duration::from_secs(10));
            drop(held);
            assert!(waited.is_ok(), "a thread's first use of a pool waited for the list lock");
        });
        let totals = counters.totals();
        assert_eq!((totals.hits, totals.returns), (1, 1), "each count exactly once");
        assert_eq!(counters.live.lock().len(), 1, "the retired block left the list");
    }

    // Not under Miri: the threads contend for the list lock, and parking_lot's parking
    // casts integers to pointers, which `-Zmiri-strict-provenance` rejects.
    #[cfg(not(miri))]
    #[test]
    fn concurrent_joins_and_leaves_are_counted_exactly_once() {
        let counters = Counters::default();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..200 {
                        let block = counters.register();
                        block.bump_owned(Event::Miss);
                        let _ = counters.totals();
                        counters.retire(&block);
                    }
                });
            }
            s.spawn(|| {
                let mut last = 0;
                for _ in 0..500 {
                    let misses = counters.totals().misses;
                    assert!(misses >= last, "a total went backwards: {misses} after {last}");
                    last = misses;
                }
            });
        });
        assert_eq!(counters.totals().misses, 800);
        assert!(counters.live.lock().is_empty());
    }
}
