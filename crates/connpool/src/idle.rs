//! The idle store: connections waiting in the pool, striped by thread.
//!
//! One shared queue puts every get and every return of every core on the same cache
//! lines (its head and tail), and with many cores that line traffic dominates a get
//! (docs/benchmarks/connpool.md has the scaling runs).
//! Here the idle connections are spread over a few stripes, one cache line each: a
//! `parking_lot` mutex around a `Vec` used as a stack, and that stack's length, kept in
//! an atomic beside it so that readers and empty-stripe checks need no lock. Each
//! thread has a home stripe: it returns connections there and looks there first, so
//! while the threads keep finding their own connections, a get + drop touches only
//! its home stripe's line, which no other core writes. A thread whose home is empty
//! takes from the others.
//!
//! Each stripe is LIFO: the connection used last is handed out next, so the warm ones
//! keep circulating and the ones a quieter pool does not need sink to the bottom,
//! where `max_idle_time` closes them.
//!
//! Each stripe's lock is a spin lock that is taken with one compare-and-swap and
//! released with a plain store: a get + drop takes a stripe lock twice, and a parking
//! mutex would pay a second atomic read-modify-write for every release. A critical
//! section is a `Vec` push or pop, so waiting for one is short; a caller that finds
//! the lock taken spins briefly and then yields its thread (its holder may have been
//! descheduled on a busy machine, and spinning would only delay it further).
//!
//! Two ways to take a connection:
//! * [`Stripes::pop_fast`], for the lock-free checkout: skips stripes whose length
//!   reads zero without locking them. It may miss a connection being pushed at that
//!   moment, which only sends the caller to the slower path.
//! * [`Stripes::pop`], for callers about to wait: locks every stripe in turn (the
//!   home one first) until one has a connection, so `None` means every stripe was
//!   found empty *under its lock* after the call began. The pool's no-lost-wake-up
//!   hand-shake rests on that, and needs no fence from the returning side; see
//!   `Shared::acquire` in `pool/shared.rs`.

use crossbeam_utils::{Backoff, CachePadded};
use spin::mutex::{SpinMutex, SpinMutexGuard};
use std::sync::OnceLock;
use std::sync::atomic::{
    AtomicU64, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release},
};

/// Idle items (the pool's connections) spread over cache-padded stripes.
pub(crate) struct Stripes<T> {
    stripes: Box<[CachePadded<Stripe<T>>]>,
}

struct Stripe<T> {
    /// Taken only through [`Stripe::lock`] (or `try_lock`), never spun on directly.
    stack: SpinMutex<Vec<T>>,
    /// `stack.len()` in the low 32 bits and a version in the high 32, stored under the
    /// lock after every change (the version bumped each time), read without it. The
    /// version lets a reader tell that nothing changed between two reads (see
    /// [`Stripes::collect`]).
    word: AtomicU64,
}

/// The low half of a stripe word: its length. A stripe never holds 2^32 connections.
const LEN_MASK: u64 = u32::MAX as u64;

impl<T> Stripe<T> {
    /// Takes the stripe's lock: at once when it is free (the common case), else
    /// spinning a little and then yielding the thread until it is.
    #[inline]
    fn lock(&self) -> SpinMutexGuard<'_, Vec<T>> {
        match self.stack.try_lock() {
            Some(stack) => stack,
            None => self.lock_contended(),
        }
    }

    #[cold]
    fn lock_contended(&self) -> SpinMutexGuard<'_, Vec<T>> {
        let backoff = Backoff::new();
        loop {
            // Test before the compare-and-swap, so waiters only read the line.
            if !self.stack.is_locked() {
                if let Some(stack) = self.stack.try_lock() {
                    return stack;
                }
            }
            // Spins with a growing pause, then yields the thread on every round.
            backoff.snooze();
        }
    }

    /// Pops the top of this stripe's stack (the lock is held).
    fn pop_locked(&self, stack: &mut Vec<T>) -> Option<T> {
        let item = stack.pop();
        self.set_len(stack.len());
        item
    }

    /// Publishes the stack's new length with the next version (the lock is held, so
    /// this thread is the only writer).
    fn set_len(&self, len: usize) {
        let version = (self.word.load(Relaxed) >> 32).wrapping_add(1) & LEN_MASK;
        self.word.store((version << 32) | (len as u64 & LEN_MASK), Release);
    }

    fn len(&self) -> usize {
        (self.word.load(Relaxed) & LEN_MASK) as usize
    }
}

/// The most stripes a pool gets: past this, scanning for a connection to take
/// costs more than the contention it avoids.
pub(crate) const MAX_STRIPES: usize = 64;

/// One stripe per core (rounded up to a power of two, at most [`MAX_STRIPES`]); read
/// once per process, as `available_parallelism` reads cgroup files on Linux.
fn stripe_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .next_power_of_two()
            .min(MAX_STRIPES)
    })
}

thread_local! {
    /// This thread's home stripe number (before masking): handed out round-robin the
    /// first time the thread touches any pool, so the runtime's worker threads land
    /// on different stripes.
    static HOME: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Relaxed)
    };
}

impl<T> Stripes<T> {
    /// An empty store with one stripe per core.
    pub(crate) fn new() -> Self {
        Self::with_stripes(stripe_count())
    }

    /// An empty store with `count` stripes (a power of two).
    fn with_stripes(count: usize) -> Self {
        debug_assert!(count.is_power_of_two());
        let stripes = (0..count)
            .map(|_| CachePadded::new(Stripe { stack: SpinMutex::new(Vec::new()), word: 0.into() }))
            .collect();
        Stripes { stripes }
    }

    /// The calling thread's home stripe.
    fn home(&self) -> usize {
        HOME.with(|home| *home) & (self.stripes.len() - 1)
    }

    /// Puts `item` on top of the calling thread's home stripe.
    pub(crate) fn push(&self, item: T) {
        self.push_to(self.home(), item);
    }

    fn push_to(&self, home: usize, item: T) {
        let stripe = &self.stripes[home];
        let mut stack = stripe.lock();
        stack.push(item);
        stripe.set_len(stack.len());
    }

    /// Takes the top item of the home stripe, else of another stripe, locking every
    /// stripe in turn: `None` means each one was found empty under its lock after the
    /// call began (what a caller about to wait needs; see the module docs).
    pub(crate) fn pop(&self) -> Option<T> {
        self.pop_locking(self.home())
    }

    fn pop_locking(&self, home: usize) -> Option<T> {
        let mask = self.stripes.len() - 1;
        (0..self.stripes.len()).find_map(|step| {
            let stripe = &self.stripes[(home + step) & mask];
            stripe.pop_locked(&mut stripe.lock())
        })
    }

    /// Takes the top item of the home stripe, else of another stripe, skipping those
    /// whose length reads zero: first the others whose lock is free, then waiting for
    /// the locks of the rest. For the lock-free checkout only: a connection pushed
    /// while this runs may be missed (see the module docs).
    #[inline]
    pub(crate) fn pop_fast(&self) -> Option<T> {
        self.pop_from(self.home())
    }

    fn pop_from(&self, home: usize) -> Option<T> {
        let mask = self.stripes.len() - 1;
        let others = (1..self.stripes.len()).map(|step| &self.stripes[(home + step) & mask]);
        let home = &self.stripes[home];
        if home.len() != 0 {
            if let Some(item) = home.pop_locked(&mut home.lock()) {
                return Some(item);
            }
        }
        let mut busy = false;
        for stripe in others.clone().filter(|s| s.len() != 0) {
            match stripe.stack.try_lock() {
                Some(mut stack) => {
                    if let Some(item) = stripe.pop_locked(&mut stack) {
                        return Some(item);
                    }
                }
                None => busy = true,
            }
        }
        if !busy {
            return None;
        }
        others.filter(|s| s.len() != 0).find_map(|stripe| stripe.pop_locked(&mut stripe.lock()))
    }

    /// How many stripes there are (one per core, rounded up to a power of two).
    pub(crate) fn stripe_count(&self) -> usize {
        self.stripes.len()
    }

    /// How many items are stored (a sum of per-stripe lengths read without locks, so
    /// only a snapshot while others push and pop).
    pub(crate) fn len(&self) -> usize {
        self.stripes.iter().map(|s| s.len()).sum()
    }

    /// Every stripe's versioned length word into `into` (one per stripe, in order):
    /// two equal collects taken one after the other saw no stripe change between
    /// them, so their lengths held together at one moment. Returns the total length.
    pub(crate) fn collect(&self, into: &mut [u64; MAX_STRIPES]) -> usize {
        let mut total = 0;
        for (slot, stripe) in into.iter_mut().zip(self.stripes.iter()) {
            *slot = stripe.word.load(Acquire);
            total += (*slot & LEN_MASK) as usize;
        }
        total
    }

    /// The total length with every stripe locked at once, so no push or pop is half
    /// seen. Lock order: the pool lock (held by the caller), then the stripes.
    pub(crate) fn len_locked(&self) -> usize {
        let stacks: Vec<_> = self.stripes.iter().map(|s| s.lock()).collect();
        stacks.iter().map(|stack| stack.len()).sum()
    }

    /// Takes every item out, stripe by stripe.
    pub(crate) fn drain(&self) -> Vec<T> {
        let mut all = Vec::new();
        for stripe in self.stripes.iter() {
            let mut stack = stripe.lock();
            all.append(&mut stack);
            stripe.set_len(0);
        }
        all
    }

    /// Takes stripe `stripe`'s stack out (bottom first), for
    /// [`restore`](Self::restore) to put the survivors back.
    pub(crate) fn take_stripe(&self, stripe: usize) -> Vec<T> {
        let stripe = &self.stripes[stripe];
        let mut stack = stripe.lock();
        stripe.set_len(0);
        std::mem::take(&mut *stack)
    }

    /// Removes, stripe by stripe under each stripe's lock, the items `doom` names a
    /// reason for, and returns them with it. Every other item stays where it is and
    /// reachable throughout: `doom` must not touch this store.
    pub(crate) fn extract<R>(&self, mut doom: impl FnMut(&T) -> Option<R>) -> Vec<(T, R)> {
        let mut doomed = Vec::new();
        for stripe in self.stripes.iter() {
            if stripe.len() == 0 {
                continue;
            }
            let mut stack = stripe.lock();
            let mut at = 0;
            while at < stack.len() {
                match doom(&stack[at]) {
                    Some(reason) => doomed.push((stack.remove(at), reason)),
                    None => at += 1,
                }
            }
            stripe.set_len(stack.len());
        }
        doomed
    }

    /// Puts `items` (bottom first) back under whatever was pushed onto stripe
    /// `stripe` since [`take_stripe`](Self::take_stripe): they are older.
    pub(crate) fn restore(&self, stripe: usize, items: Vec<T>) {
        if items.is_empty() {
            return;
        }
        let stripe = &self.stripes[stripe];
        let mut stack = stripe.lock();
        stack.splice(0..0, items);
        stripe.set_len(stack.len());
    }
}

#[cfg(test)]
mod tests {
    use super::Stripes;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn stripes_are_a_power_of_two_and_capped() {
        let stripes = Stripes::<u8>::new();
        assert!(stripes.stripes.len().is_power_of_two());
        assert!(stripes.stripes.len() <= super::MAX_STRIPES);
    }

    #[test]
    fn home_stripe_is_last_in_first_out() {
        let stripes = Stripes::with_stripes(4);
        for i in 0..3 {
            stripes.push(i);
        }
        assert_eq!(stripes.len(), 3);
        assert_eq!([stripes.pop(), stripes.pop(), stripes.pop()], [Some(2), Some(1), Some(0)]);
        assert_eq!(stripes.pop(), None);
        assert_eq!(stripes.len(), 0);
    }

    #[test]
    fn an_empty_home_takes_from_the_others() {
        let stripes = Stripes::with_stripes(4);
        stripes.push_to(1, 10);
        stripes.push_to(3, 30);
        stripes.push_to(3, 31);
        assert_eq!(stripes.len(), 3);
        // From stripe 2: its own is empty, then 3 (top first), then 1.
        assert_eq!(stripes.pop_from(2), Some(31));
        assert_eq!(stripes.pop_from(2), Some(30));
        assert_eq!(stripes.pop_from(2), Some(10));
        assert_eq!(stripes.pop_from(2), None);
    }

    #[test]
    fn a_pop_waits_for_a_busy_stripe_rather_than_report_empty() {
        let stripes = Arc::new(Stripes::with_stripes(2));
        stripes.push_to(1, 7);
        let held = stripes.stripes[1].lock();
        let popper = {
            let stripes = stripes.clone();
            std::thread::spawn(move || stripes.pop_from(0))
        };
        // The popper finds stripe 1 locked (its length says non-empty) and must wait.
        std::thread::sleep(Duration::from_millis(20));
        drop(held);
        assert_eq!(popper.join().unwrap(), Some(7));
    }

    #[test]
    fn a_locking_pop_looks_in_every_stripe_home_first() {
        let stripes = Stripes::with_stripes(4);
        stripes.push_to(1, 10);
        stripes.push_to(3, 30);
        stripes.push_to(2, 20);
        assert_eq!(stripes.pop_locking(2), Some(20));
        assert_eq!(stripes.pop_locking(2), Some(30));
        assert_eq!(stripes.pop_locking(2), Some(10));
        assert_eq!(stripes.pop_locking(2), None);
        assert_eq!(stripes.len(), 0);
    }

    #[test]
    fn a_locking_pop_waits_for_a_held_stripe() {
        let stripes = Arc::new(Stripes::<u8>::with_stripes(2));
        let held = stripes.stripes[1].lock();
        let popper = {
            let stripes = stripes.clone();
            std::thread::spawn(move || stripes.pop_locking(0))
        };
        std::thread::sleep(Duration::from_millis(20));
        assert!(!popper.is_finished(), "a held stripe must not be reported empty");
        drop(held);
        assert_eq!(popper.join().unwrap(), None);
    }

    #[test]
    fn drain_and_take_stacks_empty_every_stripe() {
        let stripes = Stripes::with_stripes(2);
        stripes.push_to(0, 1);
        stripes.push_to(1, 2);
        let mut drained = stripes.drain();
        drained.sort_unstable();
        assert_eq!(drained, [1, 2]);
        assert_eq!(stripes.len(), 0);
        stripes.push_to(1, 3);
        assert_eq!((stripes.take_stripe(0), stripes.take_stripe(1)), (vec![], vec![3]));
        assert_eq!(stripes.len(), 0);
        assert_eq!(stripes.pop(), None);
    }

    #[test]
    fn extract_removes_only_the_doomed_and_keeps_the_order() {
        let stripes = Stripes::with_stripes(2);
        for i in 0..6 {
            stripes.push_to(i % 2, i);
        }
        let mut doomed = stripes.extract(|&i| (i % 3 == 0).then_some("three"));
        doomed.sort_unstable();
        assert_eq!(doomed, [(0, "three"), (3, "three")]);
        assert_eq!(stripes.len(), 4);
        assert_eq!(stripes.pop_from(0), Some(4));
        assert_eq!(stripes.pop_from(0), Some(2));
        assert_eq!(stripes.pop_from(1), Some(5));
        assert_eq!(stripes.pop_from(1), Some(1));
    }

    #[test]
    fn restore_puts_items_under_newer_pushes() {
        let stripes = Stripes::with_stripes(1);
        stripes.push(1);
        stripes.push(2);
        let stack = stripes.take_stripe(0);
        stripes.push(3);
        stripes.restore(0, stack);
        assert_eq!(stripes.len(), 3);
        assert_eq!([stripes.pop(), stripes.pop(), stripes.pop()], [Some(3), Some(2), Some(1)]);
    }
}
