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

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::task::Waker;
use std::thread::Thread;
use std::time::Instant;

const WAITING: u8 = 0;
const GRANTED: u8 = 1;
const CLOSED: u8 = 2;

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

/// The permits of one queue; see the module docs.
#[derive(Debug)]
pub(crate) struct Slots {
    permits: CachePadded<AtomicUsize>,
    /// Whether the line is non-empty: loaded by every release and every `try_acquire`.
    waiting: CachePadded<std::sync::atomic::AtomicBool>,
    line: Mutex<Line>,
}

impl Slots {
    pub(crate) fn new(depth: usize) -> Slots {
        Slots {
            permits: CachePadded::new(AtomicUsize::new(depth)),
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

    fn take_permit(&self) -> bool {
        let mut permits = self.permits.load(Ordering::Relaxed);
        while permits > 0 {
            match self.permits.compare_exchange_weak(
                permits,
                permits - 1,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => permits = actual,
            }
        }
        false
    }

    /// Gives a permit back (a job left the queue, or a submitter did not use its
    /// permit); hands it to the longest waiter if there is one.
    #[inline]
    pub(crate) fn release(&self) {
        self.permits.fetch_add(1, Ordering::SeqCst);
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
                self.permits.fetch_add(1, Ordering::SeqCst);
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
        self.permits.load(Ordering::SeqCst)
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
}
