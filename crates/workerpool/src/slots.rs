//! The queue's free slots as permits, with a first-in, first-out line of waiting
//! submitters — threads that park, and async tasks that registered a waker.
//!
//! A submitter takes a permit before it puts a job into the queue, and a worker gives
//! one back when it takes a job out, so the queue never holds more than `depth` jobs.
//! A free slot goes to the submitter that has waited longest: while anyone waits, a
//! returned permit is handed to the head of the line instead of being put back, and a
//! newcomer's [`try_acquire`](Slots::try_acquire) fails rather than overtaking.
//!
//! No wake-up is lost: a worker returning a permit increments the count and then loads
//! `waiting`; a submitter joining the line sets `waiting` and then, under the line's
//! lock, takes whatever permits are free. Both are sequentially consistent, so either
//! the worker sees the waiter (and hands the permit over under the lock) or the waiter
//! sees the permit. A waiter that gives up (a timed-out thread, a dropped future) leaves
//! the line under the lock; if it had been handed a permit meanwhile, it passes the
//! permit on to the next waiter, so a cancelled wait never swallows a slot.
//!
//! The word that counts taken permits also carries a closed bit
//! ([`close_permits`](Slots::close_permits)): once it is set, no permit is taken any
//! more, so one compare-and-swap both admits a submitter and refuses it after a
//! shutdown began. The gate (`src/gate.rs`) builds its fast path on this.

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::task::Waker;
use std::thread::Thread;
use std::time::Instant;

const WAITING: u8 = 0;
const GRANTED: u8 = 1;
const CLOSED: u8 = 2;

/// The closed bit of [`Taken::taken`]: set once, by [`Slots::close_permits`]. The count
/// itself stays far below it (one permit per job, 64-bit).
const PERMITS_CLOSED: u64 = 1 << 63;

/// How a waiter is woken.
#[derive(Debug)]
enum Wake {
    Thread(Thread),
    Task(Option<Waker>),
}

/// One waiting submitter.
#[derive(Debug)]
pub(crate) struct Waiter {
    /// `WAITING`, then `GRANTED` (it holds a permit) or `CLOSED`; set under the line's
    /// lock, so the line and this state always agree.
    state: AtomicU8,
    wake: Mutex<Wake>,
}

impl Waiter {
    fn new(wake: Wake) -> Arc<Waiter> {
        Arc::new(Waiter { state: AtomicU8::new(WAITING), wake: Mutex::new(wake) })
    }

    /// Sets the final state and wakes the waiter. Called under the line's lock.
    fn settle(&self, state: u8) {
        let mut wake = self.wake.lock();
        self.state.store(state, Ordering::Release);
        match &mut *wake {
            Wake::Thread(thread) => thread.unpark(),
            Wake::Task(waker) => {
                if let Some(waker) = waker.take() {
                    waker.wake();
                }
            }
        }
    }
}

/// Where a wait stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// The caller holds a permit.
    Granted,
    /// Still in line.
    Waiting,
    /// The pool closed: no permit will come.
    Closed,
}

#[derive(Debug, Default)]
struct Line {
    waiters: VecDeque<Arc<Waiter>>,
    closed: bool,
}

/// The submitters' side of the permits: written when a permit is taken.
#[derive(Debug, Default)]
struct Taken {
    /// Permits taken so far (monotonic), plus [`PERMITS_CLOSED`] once closed.
    taken: AtomicU64,
    /// A value of [`Slots::released`] seen earlier: a lower bound of the permits given
    /// back, so `taken - released_seen` never understates the permits out.
    released_seen: AtomicU64,
}

/// The permits of one queue; see the module docs.
///
/// The count of free permits is split into two monotonic counters, `taken` (written by
/// submitters) and `released` (written by workers), on separate cache lines, so that a
/// submitter and a worker never read-modify-write the same line: a submitter compares
/// `taken` with the last `released` it saw and loads `released` itself only when that
/// stale view says the queue is full. Free permits are `depth - (taken - released)`.
#[derive(Debug)]
pub(crate) struct Slots {
    depth: u64,
    submit_side: CachePadded<Taken>,
    /// Permits given back so far (monotonic).
    released: CachePadded<AtomicU64>,
    /// Whether the line is non-empty: loaded by every release and every `try_acquire`.
    waiting: CachePadded<std::sync::atomic::AtomicBool>,
    line: Mutex<Line>,
}

impl Slots {
    pub(crate) fn new(depth: usize) -> Slots {
        Slots {
            // A u64 holds any usize on the supported targets.
            depth: u64::try_from(depth).unwrap_or(u64::MAX),
            submit_side: CachePadded::new(Taken::default()),
            released: CachePadded::new(AtomicU64::new(0)),
            waiting: CachePadded::new(std::sync::atomic::AtomicBool::new(false)),
            line: Mutex::new(Line::default()),
        }
    }

    /// Takes a permit if one is free and nobody waits for one.
    #[inline]
    pub(crate) fn try_acquire(&self) -> bool {
        if self.waiting.load(Ordering::SeqCst) {
            return false;
        }
        self.take_permit()
    }

    /// Whether submitters stand in line for a permit.
    #[inline]
    pub(crate) fn has_waiters(&self) -> bool {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Takes a permit unless the queue is full or the permits are closed. A successful
    /// take is a release compare-and-swap on the word [`close_permits`](Self::close_permits)
    /// reads with acquire: whatever the taker did before (raising its gate flag) is
    /// visible to the closer, or the take fails on the closed bit.
    #[inline]
    fn take_permit(&self) -> bool {
        let side = &*self.submit_side;
        let mut taken = side.taken.load(Ordering::Relaxed);
        let mut released = side.released_seen.load(Ordering::Relaxed);
        loop {
            if taken & PERMITS_CLOSED != 0 {
                return false;
            }
            // `released` never exceeds the permits truly given back, so room seen here
            // is room that exists. A stale `taken` below `released` wraps to a huge
            // count and takes the slow path. Counters are 64-bit and never wrap.
            if taken.wrapping_sub(released) >= self.depth {
                // Full by the stale view: look at the workers' counter, then at `taken`
                // (every permit given back was taken before, so no underflow). SeqCst:
                // the no-lost-wake-up argument of the module docs relies on this load.
                let fresh = self.released.load(Ordering::SeqCst);
                let now_taken = side.taken.load(Ordering::SeqCst);
                if now_taken & PERMITS_CLOSED != 0 || now_taken - fresh >= self.depth {
                    return false;
                }
                side.released_seen.fetch_max(fresh, Ordering::Relaxed);
                (taken, released) = (now_taken, fresh);
                continue;
            }
            match side.taken.compare_exchange_weak(
                taken,
                taken + 1,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => taken = actual,
            }
        }
    }

    /// Sets the closed bit of the permit word: no permit is taken from now on. Acquire
    /// (part of `SeqCst`): every successful take ordered before this one, and what its
    /// taker did before it, happens-before the caller's next steps.
    pub(crate) fn close_permits(&self) {
        self.submit_side.taken.fetch_or(PERMITS_CLOSED, Ordering::SeqCst);
    }

    /// Gives one permit back to the count (no hand-out).
    #[inline]
    fn give_back(&self) {
        self.released.fetch_add(1, Ordering::SeqCst);
    }

    /// Gives a permit back (a job left the queue, or a submitter did not use its
    /// permit); hands it to the longest waiter if there is one.
    #[inline]
    pub(crate) fn release(&self) {
        self.give_back();
        if self.waiting.load(Ordering::SeqCst) {
            self.hand_out(&mut self.line.lock());
        }
    }

    /// Gives free permits to waiters, oldest first. Called under the line's lock.
    fn hand_out(&self, line: &mut Line) {
        while let Some(first) = line.waiters.front() {
            if !self.take_permit() {
                break;
            }
            first.settle(GRANTED);
            line.waiters.pop_front();
        }
        self.waiting.store(!line.waiters.is_empty(), Ordering::SeqCst);
    }

    /// Joins the line (or takes a permit at once if one is free and nobody waits).
    fn enqueue(&self, wake: Wake) -> (Admission, Option<Arc<Waiter>>) {
        let mut line = self.line.lock();
        if line.closed {
            return (Admission::Closed, None);
        }
        let waiter = Waiter::new(wake);
        line.waiters.push_back(waiter.clone());
        self.waiting.store(true, Ordering::SeqCst);
        self.hand_out(&mut line);
        match waiter.state.load(Ordering::Acquire) {
            GRANTED => (Admission::Granted, None),
            _ => (Admission::Waiting, Some(waiter)),
        }
    }

    /// Leaves the line; a permit granted meanwhile is passed on. Returns how the wait
    /// ended: `Granted` if the permit arrived before the waiter left (and `keep` asks to
    /// keep it), `Waiting` if it left empty-handed, `Closed` if the pool closed.
    fn leave(&self, waiter: &Arc<Waiter>, keep: bool) -> Admission {
        let mut line = self.line.lock();
        match waiter.state.load(Ordering::Acquire) {
            GRANTED if keep => Admission::Granted,
            GRANTED => {
                // Handed a permit it will not use: give it to the next in line.
                self.give_back();
                self.hand_out(&mut line);
                Admission::Waiting
            }
            CLOSED => Admission::Closed,
            _ => {
                if let Some(at) = line.waiters.iter().position(|w| Arc::ptr_eq(w, waiter)) {
                    line.waiters.remove(at);
                }
                self.waiting.store(!line.waiters.is_empty(), Ordering::SeqCst);
                Admission::Waiting
            }
        }
    }

    /// Blocks until a permit is granted, the slots close, or `deadline` passes
    /// (`None`: no deadline). `Waiting` means the deadline passed.
    pub(crate) fn acquire(&self, deadline: Option<Instant>) -> Admission {
        if self.try_acquire() {
            return Admission::Granted;
        }
        let waiter = match self.enqueue(Wake::Thread(std::thread::current())) {
            (Admission::Waiting, Some(waiter)) => waiter,
            (admission, _) => return admission,
        };
        loop {
            match waiter.state.load(Ordering::Acquire) {
                GRANTED => return Admission::Granted,
                CLOSED => return Admission::Closed,
                _ => {}
            }
            match deadline {
                None => std::thread::park(),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return self.leave(&waiter, true);
                    }
                    std::thread::park_timeout(deadline - now);
                }
            }
        }
    }

    /// Closes the slots: every waiter, now and later, is told `Closed`.
    pub(crate) fn close(&self) {
        let mut line = self.line.lock();
        line.closed = true;
        for waiter in line.waiters.drain(..) {
            waiter.settle(CLOSED);
        }
        self.waiting.store(false, Ordering::SeqCst);
    }

    /// Free permits right now (a hint).
    #[cfg(test)]
    pub(crate) fn available(&self) -> usize {
        let released = self.released.load(Ordering::SeqCst);
        let out = (self.submit_side.taken.load(Ordering::SeqCst) & !PERMITS_CLOSED) - released;
        usize::try_from(self.depth - out).unwrap_or(usize::MAX)
    }
}

/// An async submitter's place in line: polled until granted, left when dropped.
#[derive(Debug, Default)]
pub(crate) struct AsyncWait {
    waiter: Option<Arc<Waiter>>,
}

impl AsyncWait {
    /// Takes a permit, joins the line, or checks on the place in line.
    pub(crate) fn poll(&mut self, slots: &Slots, waker: &Waker) -> Admission {
        match &self.waiter {
            None => {
                if slots.try_acquire() {
                    return Admission::Granted;
                }
                let (admission, waiter) = slots.enqueue(Wake::Task(Some(waker.clone())));
                self.waiter = waiter;
                admission
            }
            Some(waiter) => {
                let mut wake = waiter.wake.lock();
                // Under the waker's lock: a grant either happened (and is seen here) or
                // will take the waker stored here.
                let admission = match waiter.state.load(Ordering::Acquire) {
                    GRANTED => Admission::Granted,
                    CLOSED => Admission::Closed,
                    _ => {
                        match &mut *wake {
                            Wake::Task(Some(old)) if old.will_wake(waker) => {}
                            other => *other = Wake::Task(Some(waker.clone())),
                        }
                        return Admission::Waiting;
                    }
                };
                drop(wake);
                self.waiter = None;
                admission
            }
        }
    }

    /// Leaves the line (a dropped future): a permit granted but not used goes on.
    pub(crate) fn cancel(&mut self, slots: &Slots) {
        if let Some(waiter) = self.waiter.take() {
            slots.leave(&waiter, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Admission, AsyncWait, Slots};
    use std::sync::Arc;
    use std::task::{Wake, Waker};
    use std::time::{Duration, Instant};

    struct Flag(std::sync::atomic::AtomicUsize);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<Flag>, Waker) {
        let flag = Arc::new(Flag(std::sync::atomic::AtomicUsize::new(0)));
        (flag.clone(), Waker::from(flag))
    }

    #[test]
    fn permits_bound_and_waiters_are_served_in_order() {
        let slots = Slots::new(1);
        assert!(slots.try_acquire());
        assert!(!slots.try_acquire());
        let (woken, w) = waker();
        let mut first = AsyncWait::default();
        let mut second = AsyncWait::default();
        assert_eq!(first.poll(&slots, &w), Admission::Waiting);
        assert_eq!(second.poll(&slots, &w), Admission::Waiting);
        slots.release();
        // The permit went to the first waiter, not back to the pool: no barging.
        assert!(!slots.try_acquire());
        assert_eq!(woken.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(second.poll(&slots, &w), Admission::Waiting);
        assert_eq!(first.poll(&slots, &w), Admission::Granted);
        slots.release();
        assert_eq!(second.poll(&slots, &w), Admission::Granted);
        slots.release();
        assert_eq!(slots.available(), 1);
    }

    #[test]
    fn a_dropped_waiter_passes_its_permit_on() {
        let slots = Slots::new(1);
        assert!(slots.try_acquire());
        let (_, w) = waker();
        let (mut first, mut second) = (AsyncWait::default(), AsyncWait::default());
        assert_eq!(first.poll(&slots, &w), Admission::Waiting);
        assert_eq!(second.poll(&slots, &w), Admission::Waiting);
        slots.release(); // granted to `first`...
        first.cancel(&slots); // ...which is dropped before it is polled again
        assert_eq!(second.poll(&slots, &w), Admission::Granted);
        // A waiter that leaves before any grant just leaves.
        let mut third = AsyncWait::default();
        assert_eq!(third.poll(&slots, &w), Admission::Waiting);
        third.cancel(&slots);
        slots.release();
        assert_eq!(slots.available(), 1);
        assert!(slots.try_acquire());
    }

    // Not under Miri: parking_lot's parking casts integers to pointers, which strict-provenance
    // Miri rejects; this test exercises no unsafe code of the crate.
    #[cfg(not(miri))]
    #[test]
    fn close_wakes_every_waiter_and_threads_time_out() {
        let slots = Slots::new(1);
        assert!(slots.try_acquire());
        let started = Instant::now();
        let deadline = Some(Instant::now() + Duration::from_millis(20));
        assert_eq!(slots.acquire(deadline), Admission::Waiting);
        assert!(started.elapsed() >= Duration::from_millis(20));
        let (woken, w) = waker();
        let mut wait = AsyncWait::default();
        assert_eq!(wait.poll(&slots, &w), Admission::Waiting);
        std::thread::scope(|s| {
            let blocked = s.spawn(|| slots.acquire(None));
            std::thread::sleep(Duration::from_millis(10));
            slots.close();
            assert_eq!(blocked.join().unwrap(), Admission::Closed);
        });
        assert_eq!(woken.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(wait.poll(&slots, &w), Admission::Closed);
        let mut late = AsyncWait::default();
        assert_eq!(late.poll(&slots, &w), Admission::Closed);
    }

    // Not under Miri: parking_lot's parking casts integers to pointers, which strict-provenance
    // Miri rejects; this test exercises no unsafe code of the crate.
    #[cfg(not(miri))]
    #[test]
    fn threads_racing_for_permits_never_exceed_the_bound() {
        let slots = Slots::new(3);
        let held = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..200 {
                        assert_eq!(slots.acquire(None), Admission::Granted);
                        let now = held.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                        assert!(now <= 3, "{now} permits held at once");
                        held.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                        slots.release();
                    }
                });
            }
        });
        assert_eq!(slots.available(), 3);
    }

    #[test]
    fn closed_permits_refuse_every_take_at_any_depth() {
        for depth in [1, 2, 1024, usize::MAX] {
            let slots = Slots::new(depth);
            assert!(slots.try_acquire());
            slots.close_permits();
            assert!(!slots.try_acquire(), "depth {depth}: no permit after the close");
            // A permit given back after the close is not handed out again, not even to
            // a submitter already in line.
            let (_, w) = waker();
            let mut waiting = AsyncWait::default();
            assert_eq!(waiting.poll(&slots, &w), Admission::Waiting, "depth {depth}");
            slots.release();
            assert!(!slots.try_acquire(), "depth {depth}");
            assert_eq!(waiting.poll(&slots, &w), Admission::Waiting, "depth {depth}");
            slots.close();
            assert_eq!(waiting.poll(&slots, &w), Admission::Closed, "depth {depth}");
            assert_eq!(slots.available(), depth, "depth {depth}: every permit is back");
        }
    }

    #[test]
    fn a_stale_view_of_the_releases_never_reports_full_wrongly() {
        let slots = Slots::new(2);
        assert!(slots.try_acquire());
        assert!(slots.try_acquire());
        assert!(!slots.try_acquire());
        // The submitters' view of the releases is now behind: the release must still
        // be found.
        slots.release();
        assert!(slots.try_acquire(), "a released permit is taken again");
        assert!(!slots.try_acquire());
        slots.release();
        slots.release();
        assert_eq!(slots.available(), 2);
    }

    /// As in the pool: submitters take permits (blocking and not) and hand them to
    /// other threads that give them back, so the counter of taken permits and the
    /// counter of released ones are written by different threads, and submitters share
    /// the view of the releases one of them saw last.
    // Not under Miri: parking_lot's parking casts integers to pointers, which
    // strict-provenance Miri rejects; this test exercises no unsafe code of the crate.
    #[cfg(not(miri))]
    #[test]
    fn permits_taken_and_given_back_on_other_threads_stay_within_the_bound() {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        const DEPTH: usize = 4;
        let slots = Slots::new(DEPTH);
        let held = AtomicUsize::new(0);
        let passed = AtomicUsize::new(0);
        let (tx, rx) = crossbeam_channel::unbounded::<()>();
        std::thread::scope(|s| {
            for _ in 0..2 {
                let rx = rx.clone();
                let (slots, held) = (&slots, &held);
                s.spawn(move || {
                    while rx.recv().is_ok() {
                        held.fetch_sub(1, SeqCst);
                        slots.release();
                    }
                });
            }
            for blocking in [true, false, false] {
                let tx = tx.clone();
                let (slots, held, passed) = (&slots, &held, &passed);
                s.spawn(move || {
                    for _ in 0..5_000 {
                        let granted = if blocking {
                            slots.acquire(None) == Admission::Granted
                        } else {
                            slots.try_acquire()
                        };
                        if granted {
                            let now = held.fetch_add(1, SeqCst) + 1;
                            assert!(now <= DEPTH, "{now} permits held at once");
                            passed.fetch_add(1, SeqCst);
                            tx.send(())
                                .expect("the releasing threads run until every sender is gone");
                        }
                    }
                });
            }
            drop(tx);
        });
        assert!(passed.load(SeqCst) >= 5_000, "every blocking acquire was granted");
        assert_eq!(held.load(SeqCst), 0);
        assert_eq!(slots.available(), DEPTH);
        assert!(slots.try_acquire());
    }
}
