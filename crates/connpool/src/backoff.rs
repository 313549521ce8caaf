//! The shared dial backoff: while the server refuses connections, one pool sends it a
//! trickle of attempts instead of one per caller.
//!
//! After a failed dial the pool waits an exponentially growing, jittered delay
//! (`min · 2^(failures−1)`, capped at `max`, then drawn from its upper half) before
//! the next attempt. When the delay has passed one dial goes out (the probe); callers
//! needing a connection meanwhile wait for it or fail fast, as their wait policy says.
//! A probe that hangs holds the others back for one more delay, then another may go,
//! so at most one dial starts per delay however the dials end. A successful dial ends
//! the backoff at once: everyone dials again.
//!
//! Failures of dials that started before the latest failure was recorded do not grow
//! the delay again, so a burst of callers failing together counts as one failure.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Debug)]
struct State {
    /// Consecutive failed rounds; 0 while the server accepts.
    failures: u32,
    /// Bumped at every recorded failure and success: a dial remembers it when it
    /// starts, so failures of older dials are not counted twice.
    generation: u64,
    /// No dial before this (when `failures > 0`).
    until: Instant,
    /// A probe dial is out: others wait for its outcome, until `probe_until`.
    probing: bool,
    /// When a probe that has not answered stops holding the others back: a dial into
    /// a black hole (a server stopping, a dropped SYN) must not block every dial for a
    /// whole connect timeout, so after one more backoff delay another probe may go.
    probe_until: Instant,
    /// The last dial error, as text (errors need not be `Clone`).
    last_error: String,
}

/// What a dialler may do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Dial. `generation` goes back into [`Backoff::failed`]; `probe` is set when this
    /// dial is the one attempt allowed after a backoff delay.
    Dial { generation: u64, probe: bool },
    /// In backoff: no dial before `until` (a probe may be out meanwhile; its end is
    /// signalled by [`Backoff::settled`]).
    Wait { until: Option<Instant>, failures: u32, last_error: String },
}

/// The backoff state of one pool.
#[derive(Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    state: Mutex<State>,
    /// Woken when a probe ends (either way).
    settled: Notify,
    /// Jitter source.
    seed: AtomicU64,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        // Pools built together must not draw the same delays.
        static POOLS: AtomicU64 = AtomicU64::new(0);
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ POOLS.fetch_add(1, Relaxed).wrapping_mul(0x2545_f491_4f6c_dd1d);
        Backoff {
            min,
            max,
            state: Mutex::new(State {
                failures: 0,
                generation: 0,
                until: Instant::now(),
                probing: false,
                probe_until: Instant::now(),
                last_error: String::new(),
            }),
            settled: Notify::new(),
            seed: AtomicU64::new(seed),
        }
    }

    /// The undrawn delay after `failures` consecutive failed rounds (≥ 1).
    pub(crate) fn ceiling(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(63);
        self.min.checked_mul(1u32 << doublings.min(31)).unwrap_or(self.max).min(self.max)
    }

    /// A delay drawn uniformly from the upper half of the ceiling.
    fn jittered(&self, failures: u32) -> Duration {
        let ceiling = self.ceiling(failures);
        // splitmix64 over a shared counter: cheap, and only run after a failed dial.
        let mut z = self.seed.fetch_add(0x9e37_79b9_7f4a_7c15, Relaxed);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let fraction = (z >> 11) as f64 / (1u64 << 53) as f64;
        // `mul_f64` would panic for a ceiling near `Duration::MAX` (the float rounds
        // up past it): such a ceiling is kept as it is.
        Duration::try_from_secs_f64(ceiling.as_secs_f64() * (0.5 + fraction / 2.0))
            .map_or(ceiling, |d| d.min(ceiling))
    }

    /// Whether a dial may go out at `now`.
    pub(crate) fn gate(&self, now: Instant) -> Gate {
        let mut st = self.state.lock();
        if st.failures == 0 {
            return Gate::Dial { generation: st.generation, probe: false };
        }
        let next = if st.probing { st.probe_until } else { st.until };
        if now < next {
            return Gate::Wait {
                until: Some(next),
                failures: st.failures,
                last_error: st.last_error.clone(),
            };
        }
        if st.probing {
            // The last probe has not answered within a delay: a silent round counts
            // as a failed one, so a black hole slows the probes down too.
            st.failures = st.failures.saturating_add(1);
            st.generation = st.generation.wrapping_add(1);
        }
        st.probing = true;
        st.probe_until = crate::janitor::later(now, self.jittered(st.failures));
        Gate::Dial { generation: st.generation, probe: true }
    }

    /// A future that completes when the probe in flight ends; create it (and enable
    /// it) before calling [`gate`](Self::gate) so no wake-up is missed.
    pub(crate) fn settled(&self) -> tokio::sync::futures::Notified<'_> {
        self.settled.notified()
    }

    /// A dial succeeded: the backoff ends.
    pub(crate) fn succeeded(&self, probe: bool) {
        let mut st = self.state.lock();
        let was_failing = st.failures != 0;
        if probe || was_failing {
            st.failures = 0;
            st.generation = st.generation.wrapping_add(1);
            st.probing = false;
        }
        drop(st);
        if was_failing {
            self.settled.notify_waiters();
        }
    }

    /// A dial that started at `generation` failed with `error`; returns the delay
    /// before the next attempt.
    pub(crate) fn failed(&self, generation: u64, probe: bool, error: String) -> Duration {
        let now = Instant::now();
        let mut st = self.state.lock();
        st.last_error = error;
        if probe {
            st.probing = false;
        }
        if generation == st.generation {
            st.failures = st.failures.saturating_add(1);
            st.generation = st.generation.wrapping_add(1);
            let delay = self.jittered(st.failures);
            st.until = crate::janitor::later(now, delay);
        }
        let left = st.until.saturating_duration_since(now);
        drop(st);
        if probe {
            self.settled.notify_waiters();
        }
        left
    }

    /// Wakes everyone waiting for a probe (the pool closed).
    pub(crate) fn wake_all(&self) {
        self.settled.notify_waiters();
    }

    /// A probe was abandoned (its future dropped, or it panicked): let another go.
    pub(crate) fn abandon_probe(&self) {
        self.state.lock().probing = false;
        self.settled.notify_waiters();
    }

    /// Consecutive failed rounds now (0 while the server accepts).
    #[cfg(test)]
    pub(crate) fn failures(&self) -> u32 {
        self.state.lock().failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_ceiling_doubles_up_to_the_cap_and_never_overflows() {
        let b = Backoff::new(ms(10), Duration::from_secs(1));
        let ceilings: Vec<_> = (1..=9).map(|f| b.ceiling(f)).collect();
        assert_eq!(
            ceilings,
            [10, 20, 40, 80, 160, 320, 640, 1000, 1000].map(ms).to_vec(),
            "doubling, then capped"
        );
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(1));
        let huge = Backoff::new(Duration::MAX, Duration::MAX);
        assert_eq!(huge.ceiling(40), Duration::MAX);
        assert!(huge.jittered(40) >= Duration::MAX / 2, "no overflow drawing the jitter");
    }

    #[test]
    fn jitter_stays_in_the_upper_half() {
        let b = Backoff::new(ms(10), Duration::from_secs(1));
        for failures in 1..12 {
            for _ in 0..100 {
                let d = b.jittered(failures);
                let c = b.ceiling(failures);
                assert!(d >= c / 2 && d <= c, "{d:?} outside [{:?}, {c:?}]", c / 2);
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_probe_at_a_time_and_success_opens_the_gate() {
        let b = Backoff::new(ms(10), Duration::from_secs(1));
        let Gate::Dial { generation, probe: false } = b.gate(Instant::now()) else { panic!() };
        // Two dials of one round fail: the delay grows once.
        b.failed(generation, false, "refused".into());
        b.failed(generation, false, "refused".into());
        assert_eq!(b.failures(), 1);
        let Gate::Wait { until: Some(until), failures: 1, last_error } = b.gate(Instant::now())
        else {
            panic!()
        };
        assert_eq!(last_error, "refused");
        tokio::time::sleep_until(until).await;
        let Gate::Dial { probe: true, .. } = b.gate(Instant::now()) else { panic!() };
        let Gate::Wait { until: Some(probe_until), .. } = b.gate(Instant::now()) else {
            panic!("one probe at a time")
        };
        // The probe hangs: one delay later another may go, and only one; the silent
        // round counts as a failure, so the delays keep growing.
        tokio::time::sleep_until(probe_until).await;
        assert!(matches!(b.gate(Instant::now()), Gate::Dial { probe: true, .. }));
        assert_eq!(b.failures(), 2);
        assert!(matches!(b.gate(Instant::now()), Gate::Wait { .. }));
        b.succeeded(true);
        assert_eq!(b.failures(), 0);
        assert!(matches!(b.gate(Instant::now()), Gate::Dial { probe: false, .. }));
    }
}
