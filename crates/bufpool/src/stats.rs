//! Counters that the owning thread writes with plain stores and any thread can sum.

use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The events a pool counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    Hit,
    Miss,
    Return,
    DroppedOversized,
    DroppedFull,
}

const EVENTS: usize = 5;

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
    /// Bumps a counter this thread owns.
    #[inline]
    pub(crate) fn bump_owned(&self, event: Event) {
        let c = &self.counts[event as usize];
        c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Bumps a counter that several threads may share.
    #[inline]
    pub(crate) fn bump_shared(&self, event: Event) {
        self.counts[event as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self, event: Event) -> u64 {
        self.counts[event as usize].load(Ordering::Relaxed)
    }
}

/// Every counter block of a pool, plus the totals of threads that have exited.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    live: Mutex<Vec<Arc<CounterBlock>>>,
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
    pub(crate) dropped_oversized: u64,
    pub(crate) dropped_full: u64,
}

impl Counters {
    /// A block for a thread that just got a cache slot for the pool.
    pub(crate) fn register(&self) -> Arc<CounterBlock> {
        let block = Arc::new(CounterBlock::default());
        self.live.lock().push(block.clone());
        block
    }

    /// Folds a departing thread's block into the retired totals.
    pub(crate) fn retire(&self, block: &Arc<CounterBlock>) {
        let mut live = self.live.lock();
        if let Some(index) = live.iter().position(|b| Arc::ptr_eq(b, block)) {
            live.swap_remove(index);
            for (i, count) in block.counts.iter().enumerate() {
                self.retired.counts[i].fetch_add(count.load(Ordering::Relaxed), Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn totals(&self) -> Totals {
        let live = self.live.lock();
        let sum = |event: Event| {
            self.shared.get(event)
                + self.retired.get(event)
                + live.iter().map(|b| b.get(event)).sum::<u64>()
        };
        Totals {
            hits: sum(Event::Hit),
            misses: sum(Event::Miss),
            returns: sum(Event::Return),
            dropped_oversized: sum(Event::DroppedOversized),
            dropped_full: sum(Event::DroppedFull),
        }
    }
}
