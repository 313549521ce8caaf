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

/// Runs user code (a reset hook, a retain policy, a `size_of` function, an object's
/// `Drop`) that may panic. A panic is caught and logged, never propagated: these run
/// inside guards' destructors, possibly while the thread is already unwinding, where a
/// second panic would abort the process. Returns `None` when `f` panicked.
pub(crate) fn guarded<R>(what: &'static str, f: impl FnOnce() -> R) -> Option<R> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(value) => Some(value),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(non-string panic payload)");
            tracing::error!(panic = message, "{what} panicked; the pool caught it");
            // Dropping the payload runs user code too.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(payload)));
            None
        }
    }
}

/// Drops an object the pool lets go of; a panicking `Drop` is caught and logged.
pub(crate) fn drop_object<O>(object: O) {
    let _ = guarded("dropping a pooled object", move || drop(object));
}

/// Objects no thread cache holds, each with the size it was counted with. The
/// low-water mark records the fewest objects the store held since the last sweep:
/// that many sat unused for the whole interval, so a sweep frees exactly that many
/// (the victim-cache idea, without a second generation).
///
/// `bytes` never undercounts and never wraps: a size is added before its object is
/// pushed, and subtracted, as stored with the object, only after a pop, so every
/// subtraction follows the addition it undoes.
pub(crate) struct Store<T> {
    queue: ArrayQueue<(Boxed<T>, u64)>,
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
    pub(crate) fn pop(&self) -> Option<Boxed<T>> {
        let (object, size) = self.queue.pop()?;
        self.bytes.fetch_sub(size, Ordering::Relaxed);
        if self.idle.is_some() {
            // Only idle release reads the mark: without it, skip the shared update.
            self.low_water.fetch_min(self.queue.len(), Ordering::Relaxed);
        }
        Some(object)
    }

    /// Stores an object of `size` bytes, or hands it back when the store is full.
    pub(crate) fn push(&self, object: Boxed<T>, size: u64) -> Result<(), Boxed<T>> {
        self.bytes.fetch_add(size, Ordering::Relaxed);
        self.queue.push((object, size)).map_err(|(object, size)| {
            self.bytes.fetch_sub(size, Ordering::Relaxed);
            object
        })
    }

    /// Frees the objects that sat unused for a whole interval, if an interval has
    /// passed since the last sweep. Returns how many were freed.
    pub(crate) fn sweep_if_due(&self) -> usize {
        let Some(idle) = &self.idle else { return 0 };
        let Some(mut last) = idle.last_sweep.try_lock() else { return 0 };
        if last.elapsed() < idle.interval {
            return 0;
        }
        *last = Instant::now();
        let unused = self.low_water.load(Ordering::Relaxed);
        let freed = self.release(unused);
        self.low_water.store(self.queue.len(), Ordering::Relaxed);
        if freed > 0 {
            tracing::debug!(freed, "released idle pooled objects");
        }
        freed
    }

    /// Frees up to `count` objects now.
    pub(crate) fn release(&self, count: usize) -> usize {
        let mut freed = 0;
        while freed < count {
            let Some((object, size)) = self.queue.pop() else { break };
            self.bytes.fetch_sub(size, Ordering::Relaxed);
            drop_object(object);
            freed += 1;
        }
        self.released_idle.fetch_add(freed as u64, Ordering::Relaxed);
        freed
    }
}

impl<T> Drop for Store<T> {
    fn drop(&mut self) {
        // One by one, each drop guarded: a panicking `Drop` must neither abort (the
        // pool may be dropped while unwinding) nor leak the objects after it.
        while let Some((object, _)) = self.queue.pop() {
            drop_object(object);
        }
    }
}
