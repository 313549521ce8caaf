//! The lock-free checkout's clock: a reading of tokio's clock reused for a short
//! period, so that a get which finds an idle connection reads no clock.
//!
//! A checkout needs the time twice over: to judge the connection (used within
//! `health_check_after`? past its lifetime or idle limit?) and to stamp its
//! `last_used`. A system clock read is a system call's worth of work (a vDSO call,
//! trapped by some hypervisors) in a path that is otherwise a few loads and one lock
//! each way, so the checkout does not make one: [`Clock::now`] returns the latest
//! real reading while it is *valid*, and reads the clock (and publishes the reading)
//! when it is not.
//!
//! What ends a reading's validity is a timer: whoever publishes a reading makes sure
//! one is armed, [`PERIOD`] ahead (the timer driver's resolution). No task runs it: it
//! is a tokio `Sleep` registered with the runtime's timer driver and polled with a
//! waker of ours, and the driver calling that waker is what invalidates the reading.
//! Invariant: while a reading is valid, a timer is armed that will invalidate it, so
//! a reused reading is at most about two milliseconds old (one period, rounded up to
//! the driver's next tick, plus however late the driver fires). The timer is on
//! tokio's clock, and the driver fires it as soon as paused time in a test moves past
//! it, before the test's task runs again. A busy pool thus reads the clock about once
//! a millisecond, whatever its rate of gets; an idle pool has nothing armed after a
//! millisecond (no polling, no wake-ups); a closed or dropped pool drops its timer.
//! Without a runtime with timers to arm one on, every call reads the clock.
//!
//! What this changes for users: a checkout that finds an idle connection, or a queued
//! caller handed one by a return, judges and stamps it with a time up to about two
//! milliseconds old. `last_used` may lag by as much (it never moves backwards), a
//! connection may skip its health check when last used that much more than
//! `health_check_after` ago, and may be handed out that long after its idle or
//! lifetime limit (the janitor's sweeps, the checks on return and every slower path
//! read the clock itself).

use crate::unwind;
use crossbeam_utils::atomic::AtomicCell;
use parking_lot::Mutex;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{
    AtomicBool,
    Ordering::{AcqRel, Acquire, Release},
};
use std::sync::{Arc, Weak};
use std::task::{Context, Wake, Waker};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// How long after a reading its timer fires (then rounded up to the driver's tick).
pub(crate) const PERIOD: Duration = Duration::from_millis(1);

/// A pool's checkout clock (see the module docs).
pub(crate) struct Clock {
    state: Arc<State>,
    /// The pool's `health_check_after`, to judge freshness by one comparison.
    health_check_after: Duration,
    /// Handed to the timer: its wake invalidates the reading.
    waker: Waker,
}

struct State {
    /// The latest published reading (read without locking: a sequence lock).
    recent: AtomicCell<Reading>,
    /// Whether `recent` may be reused: set after publishing while a timer is armed,
    /// cleared when that timer fires.
    valid: AtomicBool,
    /// Whether a timer is armed (registered and not yet fired).
    armed: AtomicBool,
    /// Set once the pool closes or is dropped (or a timer could not be armed): no
    /// more timers, every call reads the clock.
    stopped: AtomicBool,
    /// The armed timer, kept registered with the driver until it fires or is replaced.
    timer: Mutex<Option<Pin<Box<Sleep>>>>,
}

impl Clock {
    /// A clock with no reading yet, for a pool with this health-check window.
    pub(crate) fn new(health_check_after: Duration) -> Clock {
        let now = Instant::now();
        let state = Arc::new(State {
            recent: AtomicCell::new(Reading::at(now, health_check_after)),
            valid: AtomicBool::new(false),
            armed: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            timer: Mutex::new(None),
        });
        let waker = Waker::from(Arc::new(Expiry(Arc::downgrade(&state))));
        Clock { state, health_check_after, waker }
    }

    /// The time: the latest reading while it is valid, else a fresh one.
    #[inline]
    pub(crate) fn now(&self) -> Reading {
        let state = &*self.state;
        if state.valid.load(Acquire) {
            return state.recent.load();
        }
        self.refresh()
    }

    /// Reads the clock, publishes the reading and, on a runtime, makes it reusable
    /// with a timer armed to end that.
    #[cold]
    fn refresh(&self) -> Reading {
        let now = Instant::now();
        let reading = Reading::at(now, self.health_check_after);
        let state = &self.state;
        if state.stopped.load(Acquire) || tokio::runtime::Handle::try_current().is_err() {
            return reading;
        }
        // Readings published out of order would go back by the time between two
        // reads; a stamp never goes back (see `Shared::take_idle`), so that is all.
        state.recent.store(reading);
        // Valid first, then armed: a timer firing meanwhile either is seen to have
        // fired here (`armed` was false: arm another) or clears `valid` after this
        // store (its swap of `armed` reads ours, which orders our store before its
        // clear).
        state.valid.store(true, Release);
        if !state.armed.swap(true, AcqRel) {
            self.arm(now);
        }
        reading
    }

    /// Registers a timer [`PERIOD`] after `now` on the current runtime (a new one
    /// each time: the pool may move between runtimes); its firing invalidates the
    /// reading. Only the caller that set `armed` gets here, so an armed timer is
    /// never replaced.
    fn arm(&self, now: Instant) {
        let state = &self.state;
        let armed = unwind::guard("arming the checkout clock's timer", || {
            let mut timer = Box::pin(tokio::time::sleep_until(now.checked_add(PERIOD)?));
            // Registers the timer; ready only if the deadline already passed.
            let fired = timer.as_mut().poll(&mut Context::from_waker(&self.waker)).is_ready();
            Some((timer, fired))
        });
        match armed {
            Ok(Some((timer, fired))) => {
                let fired_one = state.timer.lock().replace(timer);
                drop(fired_one);
                if fired {
                    state.expire();
                }
            }
            // No timer could be armed (a runtime without timers, or no room on the
            // clock): stop reusing readings for good.
            Ok(None) | Err(_) => {
                state.stopped.store(true, Release);
                state.expire();
            }
        }
    }

    /// The pool closed or was dropped: the timer goes and none is armed again.
    pub(crate) fn stop(&self) {
        self.state.stopped.store(true, Release);
        self.state.valid.store(false, Release);
        let timer = self.state.timer.lock().take();
        drop(timer);
    }
}

/// A reading of the clock, with the health-check window's edge at that time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reading {
    /// The time read.
    pub(crate) now: Instant,
    /// Which connections are within the health-check window at `now`.
    fresh: Fresh,
}

/// `now.duration_since(last_used) < health_check_after`, precomputed for `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fresh {
    /// A zero window: every connection is checked.
    Never,
    /// Used after this moment.
    After(Instant),
    /// The window reaches back before the clock's origin: every connection.
    Always,
}

impl Reading {
    fn at(now: Instant, health_check_after: Duration) -> Reading {
        let fresh = if health_check_after.is_zero() {
            Fresh::Never
        } else {
            now.checked_sub(health_check_after).map_or(Fresh::Always, Fresh::After)
        };
        Reading { now, fresh }
    }

    /// Whether a connection last used at `last_used` is within the health-check
    /// window at this reading (one comparison; the same answer as
    /// `now.duration_since(last_used) < health_check_after`).
    #[inline]
    pub(crate) fn is_fresh(&self, last_used: Instant) -> bool {
        match self.fresh {
            Fresh::Never => false,
            Fresh::After(edge) => last_used > edge,
            Fresh::Always => true,
        }
    }
}

impl State {
    /// The armed timer fired: unarm first, then invalidate (see `Clock::refresh`).
    fn expire(&self) {
        self.armed.swap(false, AcqRel);
        self.valid.store(false, Release);
    }
}

/// The waker of a clock's timer: the driver calls it when the timer fires (or the
/// runtime shuts down), which invalidates the reading. Only atomics: it may run
/// inside the driver.
struct Expiry(Weak<State>);

impl Wake for Expiry {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(state) = self.0.upgrade() {
            state.expire();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Clock;
    use std::time::Duration;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn freshness_is_the_window_comparison() {
        use super::Reading;
        let now = tokio::time::Instant::now();
        let window = ms(10);
        let reading = Reading::at(now, window);
        for back in [0, 1, 9, 10, 11, 100] {
            let last_used = now - ms(back);
            let expected = now.duration_since(last_used) < window;
            assert_eq!(reading.is_fresh(last_used), expected, "{back} ms back");
        }
        assert!(reading.is_fresh(now + ms(5)), "a stamp after the reading is fresh");
        assert!(!Reading::at(now, Duration::ZERO).is_fresh(now), "a zero window checks all");
        assert!(Reading::at(now, ms(1 << 60)).is_fresh(now - ms(1)), "a window past the origin");
    }

    #[test]
    fn without_a_runtime_every_call_reads_the_clock() {
        let clock = Clock::new(ms(500));
        let first = clock.now().now;
        std::thread::sleep(ms(2));
        assert!(clock.now().now >= first + ms(2), "a reading was reused with nothing to end it");
    }

    fn tasks() -> usize {
        tokio::runtime::Handle::current().metrics().num_alive_tasks()
    }

    #[tokio::test(start_paused = true)]
    async fn a_reading_is_reused_until_its_timer_fires() {
        let clock = Clock::new(ms(500));
        let first = clock.now().now;
        assert_eq!(clock.now().now, first);
        tokio::time::advance(Duration::from_micros(500)).await;
        assert_eq!(clock.now().now, first, "reused within the period");
        tokio::time::advance(Duration::from_micros(500)).await;
        assert_eq!(clock.now().now, first + ms(1), "read again once the period ended");
        tokio::time::advance(ms(5)).await;
        assert_eq!(clock.now().now, first + ms(6));
        tokio::time::advance(ms(60)).await;
        assert_eq!(clock.now().now, first + ms(66));
        assert_eq!(tasks(), 0, "no task runs the clock");
    }

    #[tokio::test(start_paused = true)]
    async fn stop_drops_the_timer_and_every_later_call_reads() {
        let clock = Clock::new(ms(500));
        let first = clock.now().now;
        clock.stop();
        assert!(clock.state.timer.lock().is_none());
        tokio::time::advance(ms(1)).await;
        assert_eq!(clock.now().now, first + ms(1));
        tokio::time::advance(ms(1)).await;
        assert_eq!(clock.now().now, first + ms(2));
        assert!(clock.state.timer.lock().is_none(), "no timer armed after stop");
    }

    #[test]
    fn a_runtime_shut_down_ends_the_reuse() {
        let clock = Clock::new(ms(500));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let first = runtime.block_on(async { clock.now().now });
        drop(runtime);
        assert!(!clock.state.valid.load(std::sync::atomic::Ordering::Acquire));
        assert!(clock.now().now >= first);
    }

    #[test]
    fn a_clock_moves_on_to_the_next_runtime() {
        let clock = Clock::new(ms(500));
        for _ in 0..3 {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let first = clock.now().now;
                assert_eq!(clock.now().now, first, "reused on this runtime too");
                tokio::time::sleep(ms(3)).await;
                assert!(clock.now().now >= first + ms(3));
            });
            // The last timer still belongs to the runtime dropped here.
        }
        assert!(!clock.state.stopped.load(std::sync::atomic::Ordering::Acquire));
    }

    #[test]
    fn a_runtime_without_timers_reads_every_time() {
        let clock = Clock::new(ms(500));
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let first = clock.now().now;
            std::thread::sleep(ms(2));
            assert!(clock.now().now >= first + ms(2));
        });
    }
}
