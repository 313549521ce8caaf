//! The primitives of the parking protocol, swapped for loom's models under `cfg(loom)`
//! so that `tests/loom.rs` explores the real `parking` code, not a copy of it.

#[cfg(not(loom))]
mod imp {
    pub(crate) use crossbeam_utils::sync::{Parker, Unparker};
    pub(crate) use parking_lot::Mutex;
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};

    /// How an idle worker waits between looks at the queue: it gives its CPU away
    /// (`sched_yield`) instead of spinning. A spinning worker holds a CPU that the
    /// submitter, or a neighbour process, may need; when cores are oversubscribed that
    /// costs throughput, so every look yields (`docs/benchmarks.md` has the runs that
    /// decided it).
    #[derive(Debug)]
    pub(crate) struct IdlePoll {
        looks_left: std::cell::Cell<u32>,
    }

    impl IdlePoll {
        /// Yields between looks this many times before the caller moves on (to
        /// searching, or to sleep): long enough to catch the next job of a submitter
        /// that streams jobs, short enough that an idle pool soon sleeps.
        const LOOKS: u32 = 8;

        pub(crate) fn new() -> Self {
            IdlePoll { looks_left: std::cell::Cell::new(Self::LOOKS) }
        }

        /// Gives the CPU away once.
        pub(crate) fn snooze(&self) {
            std::thread::yield_now();
            self.looks_left.set(self.looks_left.get().saturating_sub(1));
        }

        pub(crate) fn is_completed(&self) -> bool {
            self.looks_left.get() == 0
        }
    }
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
    use loom::sync::{Arc, Condvar};

    /// `parking_lot::Mutex`'s shape (no poisoning) over loom's mutex.
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
        }
    }

    /// A one-look idle poll: one yield is enough to let the model interleave the
    /// other threads.
    #[derive(Debug, Default)]
    pub(crate) struct IdlePoll(std::cell::Cell<bool>);

    impl IdlePoll {
        pub(crate) fn new() -> Self {
            IdlePoll::default()
        }

        pub(crate) fn snooze(&self) {
            loom::thread::yield_now();
            self.0.set(true);
        }

        pub(crate) fn is_completed(&self) -> bool {
            self.0.get()
        }
    }

    #[derive(Debug)]
    struct Token {
        available: loom::sync::Mutex<bool>,
        changed: Condvar,
    }

    /// `crossbeam_utils::sync::Parker`'s contract: `park` returns once a token is
    /// available and consumes it.
    #[derive(Debug)]
    pub(crate) struct Parker(Unparker);

    /// Makes the token available to its [`Parker`].
    #[derive(Debug, Clone)]
    pub(crate) struct Unparker(Arc<Token>);

    impl Default for Parker {
        fn default() -> Self {
            Parker(Unparker(Arc::new(Token {
                available: loom::sync::Mutex::new(false),
                changed: Condvar::new(),
            })))
        }
    }

    impl Parker {
        pub(crate) fn park(&self) {
            let token = &(self.0).0;
            let mut available = token.available.lock().unwrap();
            while !*available {
                available = token.changed.wait(available).unwrap();
            }
            *available = false;
        }

        pub(crate) fn unparker(&self) -> &Unparker {
            &self.0
        }
    }

    impl Unparker {
        pub(crate) fn unpark(&self) {
            *self.0.available.lock().unwrap() = true;
            self.0.changed.notify_one();
        }
    }
}

pub(crate) use imp::*;
