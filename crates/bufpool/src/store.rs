//! The shared overflow between threads: lock-free, bounded, with idle release.

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How every pooled object is held, from `make` to its last drop: boxed once, so it
/// moves between thread caches and the shared store without allocating, and alone on
/// its cache lines, so two threads using neighbouring objects never write to the same
/// line (the header of a `Vec` changes on every fill).
pub(crate) type Boxed<T> = Box<CachePadded<T>>;

/// Boxes a new or attached object the way the pool keeps it.
pub(crate) fn boxed<T>(object: T) -> Boxed<T> {
    Box::new(CachePadded::new(object))
}

/// Objects no thread cache holds. The low-water mark records the fewest objects the
/// store held since the last sweep: that many sat unused for the whole interval, so a
/// sweep frees exactly that many (the victim-cache idea, without a second generation).
pub(crate) struct Store<T> {
    queue: ArrayQueue<Boxed<T>>,
    low_water: CachePadded<AtomicUsize>,
    /// Bytes held, for pools that measure their objects (buffer pools).
    pub(crate) bytes: CachePadded<AtomicU64>,
    idle: Option<IdleClock>,
    pub(crate) released_idle: AtomicU64,
}

struct IdleClock {
    interval: Duration,
    last_sweep: Mutex<Instant>,
}

impl<T> Store<T> {
    pub(crate) fn new(capacity: usize, idle_interval: Option<Duration>) -> Self {
        Store {
            queue: ArrayQueue::new(capacity),
            low_water: CachePadded::new(AtomicUsize::new(0)),
            bytes: CachePadded::new(AtomicU64::new(0)),
            idle: idle_interval
                .map(|interval| IdleClock { interval, last_sweep: Mutex::new(Instant::now()) }),
            released_idle: AtomicU64::new(0),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Takes an object, lowering the low-water mark when the store shrinks below it.
    pub(crate) fn pop(&self, size_of: impl Fn(&T) -> u64) -> Option<Boxed<T>> {
        let object = self.queue.pop()?;
        self.bytes.fetch_sub(size_of(&object), Ordering::Relaxed);
        if self.idle.is_some() {
            // Only idle release reads the mark: without it, skip the shared update.
            self.low_water.fetch_min(self.queue.len(), Ordering::Relaxed);
        }
        Some(object)
    }

    /// Stores an object, or hands it back when the store is full.
    pub(crate) fn push(
        &self,
        object: Boxed<T>,
        size_of: impl Fn(&T) -> u64,
    ) -> Result<(), Boxed<T>> {
        let size = size_of(&object);
        self.queue.push(object)?;
        self.bytes.fetch_add(size, Ordering::Relaxed);
        Ok(())
    }

    /// Frees the objects that sat unused for a whole interval, if an interval has
    /// passed since the last sweep. Returns how many were freed.
    pub(crate) fn sweep_if_due(&self, size_of: impl Fn(&T) -> u64) -> usize {
        let Some(idle) = &self.idle else { return 0 };
        let Some(mut last) = idle.last_sweep.try_lock() else { return 0 };
        if last.elapsed() < idle.interval {
            return 0;
        }
        *last = Instant::now();
        let unused = self.low_water.load(Ordering::Relaxed);
        let freed = self.release(unused, &size_of);
        self.low_water.store(self.queue.len(), Ordering::Relaxed);
        if freed > 0 {
            tracing::debug!(freed, "released idle pooled objects");
        }
        freed
    }

    /// Frees up to `count` objects now.
    pub(crate) fn release(&self, count: usize, size_of: impl Fn(&T) -> u64) -> usize {
        let mut freed = 0;
        while freed < count {
            let Some(object) = self.queue.pop() else { break };
            self.bytes.fetch_sub(size_of(&object), Ordering::Relaxed);
            drop(object);
            freed += 1;
        }
        self.released_idle.fetch_add(freed as u64, Ordering::Relaxed);
        freed
    }
}
