//! The primitives of the parking protocol, swapped for loom's models under `cfg(loom)`
//! so that `tests/loom.rs` explores the real `parking` code, not a copy of it.

#[cfg(not(loom))]
mod imp {
    pub(crate) use crossbeam_utils::sync::{Parker, Unparker};
    pub(crate) use parking_lot::Mutex;
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};

    /// How an idle worker waits between looks at the queue: a short, bounded spin that
    /// doubles from look to look, and never `sched_yield`. On a machine whose cores
    /// are all busy (neighbour processes, a CPU quota) a yield hands the CPU to another
    /// runnable thread for its whole time slice, so a worker that yields while it waits
    /// for the next job falls far behind; a worker that spins for a few microseconds
    /// and then sleeps costs that machine almost nothing and is woken when work comes.
    #[derive(Debug)]
    pub(crate) struct IdlePoll {
        look: std::cell::Cell<u32>,
    }

    impl IdlePoll {
        /// Looks before the caller moves on (to searching, or to sleep): long enough
        /// to catch the next job of a submitter that streams jobs, short enough that
        /// an idle pool soon sleeps.
        const LOOKS: u32 = 8;

        /// The spin before look `n` is `2^min(n, MAX_DOUBLING)` spin-loop hints.
        const MAX_DOUBLING: u32 = 6;

        pub(crate) fn new() -> Self {
            IdlePoll { look: std::cell::Cell::new(0) }
        }

        /// Waits a little before the next look.
        pub(crate) fn snooze(&self) {
            let look = self.look.get();
            for _ in 0..1u32 << look.min(Self::MAX_DOUBLING) {
                std::hint::spin_loop();
            }
            self.look.set(look.saturating_add(1));
        }

        pub(crate) fn is_completed(&self) -> bool {
            self.look.get() >= Self::LOOKS
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
