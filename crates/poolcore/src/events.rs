//! Optional timing events, free when unused.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a timing event measured.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timing {
    /// Time a caller waited to get an object or connection from a pool.
    AcquireWait,
    /// Time spent opening one connection (successful or not).
    Dial,
    /// Time a job waited in a worker pool's queue before a worker started it.
    QueueWait,
    /// Time a worker spent running one job.
    JobRun,
}

impl Timing {
    /// Every timing, in a stable order.
    pub const ALL: [Timing; 4] =
        [Timing::AcquireWait, Timing::Dial, Timing::QueueWait, Timing::JobRun];

    /// Stable snake_case name, used in metric names (`acquire_wait_seconds`).
    ///
    /// ```
    /// assert_eq!(poolside_core::Timing::QueueWait.name(), "queue_wait");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Timing::AcquireWait => "acquire_wait",
            Timing::Dial => "dial",
            Timing::QueueWait => "queue_wait",
            Timing::JobRun => "job_run",
        }
    }

    /// One sentence for humans, used as histogram help text.
    ///
    /// ```
    /// assert!(!poolside_core::Timing::Dial.help().is_empty());
    /// ```
    pub const fn help(self) -> &'static str {
        match self {
            Timing::AcquireWait => {
                "Time from calling get until it returned a connection or object, for successful gets only (failed and timed-out gets are counted by the pool's error counters)."
            }
            Timing::Dial => "Time spent opening a connection, successful or not.",
            Timing::QueueWait => "Time jobs waited in the queue before a worker started them.",
            Timing::JobRun => "Time workers spent running a job.",
        }
    }
}

impl fmt::Display for Timing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Receives timing events from a pool. Installed per pool; must be cheap and must not
/// block, because it runs on the pool's caller threads. A panic in a hook is caught
/// where the pool reports the event ([`Events`]): that event is lost, and the pool's
/// operation goes on as if no hook were installed.
///
/// Any `Fn(Timing, Duration) + Send + Sync + 'static` closure is a hook.
///
/// ```
/// use poolside_core::{Events, Timing};
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let waits = Arc::new(AtomicU64::new(0));
/// let seen = waits.clone();
/// let events = Events::new(move |t: Timing, _d: Duration| {
///     if t == Timing::AcquireWait {
///         seen.fetch_add(1, Ordering::Relaxed);
///     }
/// });
/// events.record(Timing::AcquireWait, Duration::from_micros(3));
/// assert_eq!(waits.load(Ordering::Relaxed), 1);
/// ```
pub trait EventHook: Send + Sync + 'static {
    /// Called once per measured event.
    fn on_timing(&self, timing: Timing, elapsed: Duration);

    /// Called once per connection lifecycle event of a connection pool (connect,
    /// checkout, checkin, close, each with the connection's id), like r2d2's
    /// `HandleEvent`. The default ignores them; closures receive only timings.
    ///
    /// ```
    /// use poolside_core::{ConnEvent, EventHook, Events, Timing};
    /// use std::sync::Mutex;
    /// use std::time::Duration;
    ///
    /// #[derive(Default)]
    /// struct Log(Mutex<Vec<ConnEvent>>);
    /// impl EventHook for Log {
    ///     fn on_timing(&self, _: Timing, _: Duration) {}
    ///     fn on_connection(&self, event: ConnEvent) {
    ///         self.0.lock().unwrap().push(event);
    ///     }
    /// }
    /// let log = std::sync::Arc::new(Log::default());
    /// let events = Events::from_arc(log.clone());
    /// events.connection(ConnEvent::Checkin { id: 3, held: Duration::from_millis(2) });
    /// assert_eq!(log.0.lock().unwrap()[0].id(), 3);
    /// ```
    fn on_connection(&self, event: ConnEvent) {
        let _ = event;
    }

    /// Whether this hook wants [`on_connection`](EventHook::on_connection) calls.
    /// Asked once, when the hook is installed: a hook that answers `false` spares the
    /// pool the per-checkout calls and the clock read that measures how long each
    /// connection was held. The default is `true`; closures receive only timings
    /// and answer `false`.
    ///
    /// ```
    /// use poolside_core::{EventHook, Events, Timing};
    /// use std::time::Duration;
    ///
    /// struct TimingsOnly;
    /// impl EventHook for TimingsOnly {
    ///     fn on_timing(&self, _: Timing, _: Duration) {}
    ///     fn wants_connection_events(&self) -> bool {
    ///         false
    ///     }
    /// }
    /// assert!(!Events::new(TimingsOnly).connections_enabled());
    /// ```
    fn wants_connection_events(&self) -> bool {
        true
    }
}

/// One connection's lifecycle event, as a connection pool reports it to
/// [`EventHook::on_connection`]. Durations are on the pool's clock.
///
/// ```
/// use poolside_core::ConnEvent;
/// use std::time::Duration;
/// let e = ConnEvent::Close { id: 7, age: Duration::from_secs(9), reason: "idle" };
/// assert_eq!(e.id(), 7);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnEvent {
    /// A new connection opened (and prepared): `took` is the whole dial.
    Connect {
        /// The connection's id, unique within its pool.
        id: u64,
        /// Time spent opening it.
        took: Duration,
    },
    /// A caller received the connection after waiting `waited` (from calling get).
    Checkout {
        /// The connection's id.
        id: u64,
        /// From the get call until it returned.
        waited: Duration,
    },
    /// The caller gave the connection back after holding it for `held`.
    Checkin {
        /// The connection's id.
        id: u64,
        /// From checkout to return.
        held: Duration,
    },
    /// The pool closed the connection, `age` after it was opened, for `reason` (the
    /// pool's snake_case name for it, e.g. `"lifetime"`, `"broken"`).
    Close {
        /// The connection's id.
        id: u64,
        /// Time since it was opened.
        age: Duration,
        /// Why, as a stable snake_case name.
        reason: &'static str,
    },
}

impl ConnEvent {
    /// The id of the connection the event is about.
    ///
    /// ```
    /// # use poolside_core::ConnEvent;
    /// # use std::time::Duration;
    /// assert_eq!(ConnEvent::Connect { id: 1, took: Duration::ZERO }.id(), 1);
    /// ```
    pub fn id(&self) -> u64 {
        match *self {
            ConnEvent::Connect { id, .. }
            | ConnEvent::Checkout { id, .. }
            | ConnEvent::Checkin { id, .. }
            | ConnEvent::Close { id, .. } => id,
        }
    }
}

impl<F: Fn(Timing, Duration) + Send + Sync + 'static> EventHook for F {
    #[inline]
    fn on_timing(&self, timing: Timing, elapsed: Duration) {
        self(timing, elapsed)
    }

    fn wants_connection_events(&self) -> bool {
        false
    }
}

/// A pool's optional event hook.
///
/// Pools keep one of these and call [`Events::start`] / [`Events::finish`] around
/// what they measure. Without a hook, `start` returns `None` without reading the clock
/// and `finish` does nothing: one predictable branch is the whole cost.
///
/// ```
/// use poolside_core::{Events, Timing};
///
/// let events = Events::none();
/// let started = events.start(); // no clock read
/// assert!(started.is_none());
/// events.finish(Timing::JobRun, started); // no-op
/// ```
#[derive(Clone, Default)]
pub struct Events {
    hook: Option<Arc<dyn EventHook>>,
    /// The hook's answer to [`EventHook::wants_connection_events`], asked once.
    connections: bool,
}

impl Events {
    /// No hook: events cost nothing.
    pub const fn none() -> Self {
        Events { hook: None, connections: false }
    }

    /// Sends events to `hook`.
    pub fn new(hook: impl EventHook) -> Self {
        Self::from_arc(Arc::new(hook))
    }

    /// Sends events to a shared hook.
    ///
    /// ```
    /// use poolside_core::{EventHook, Events, Timing};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// let hook: Arc<dyn EventHook> = Arc::new(|_: Timing, _: Duration| {});
    /// let events = Events::from_arc(hook);
    /// assert!(events.is_enabled());
    /// ```
    pub fn from_arc(hook: Arc<dyn EventHook>) -> Self {
        let connections = hook.wants_connection_events();
        Events { hook: Some(hook), connections }
    }

    /// Whether a hook is installed.
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.hook.is_some()
    }

    /// Whether a hook is installed that wants connection lifecycle events
    /// ([`EventHook::wants_connection_events`]): pools skip building them otherwise.
    ///
    /// ```
    /// use poolside_core::{Events, Timing};
    /// use std::time::Duration;
    ///
    /// let timings_only = Events::new(|_: Timing, _: Duration| {});
    /// assert!(timings_only.is_enabled());
    /// assert!(!timings_only.connections_enabled());
    /// assert!(!Events::none().connections_enabled());
    /// ```
    #[inline]
    pub fn connections_enabled(&self) -> bool {
        self.connections
    }

    /// The current instant if a hook is installed, else `None` (and no clock read).
    #[inline]
    pub fn start(&self) -> Option<Instant> {
        self.hook.as_ref().map(|_| Instant::now())
    }

    /// Reports the time since `started` (from [`Events::start`]) as `timing`.
    #[inline]
    pub fn finish(&self, timing: Timing, started: Option<Instant>) {
        if let (Some(hook), Some(started)) = (&self.hook, started) {
            deliver(|| hook.on_timing(timing, started.elapsed()));
        }
    }

    /// Reports a connection lifecycle event (nothing without a hook).
    ///
    /// ```
    /// # use poolside_core::{ConnEvent, Events};
    /// Events::none().connection(ConnEvent::Checkin { id: 1, held: Default::default() });
    /// ```
    #[inline]
    pub fn connection(&self, event: ConnEvent) {
        if let (Some(hook), true) = (&self.hook, self.connections) {
            deliver(|| hook.on_connection(event));
        }
    }

    /// Reports an already measured duration (for pools that use another clock, such
    /// as tokio's, which tests can pause).
    ///
    /// A hook that panics loses the event; the caller carries on:
    ///
    /// ```
    /// use poolside_core::{Events, Timing};
    /// use std::time::Duration;
    ///
    /// let events = Events::new(|_: Timing, _: Duration| panic!("a broken metrics sink"));
    /// events.record(Timing::AcquireWait, Duration::from_micros(3)); // returns
    /// ```
    #[inline]
    pub fn record(&self, timing: Timing, elapsed: Duration) {
        if let Some(hook) = &self.hook {
            deliver(|| hook.on_timing(timing, elapsed));
        }
    }
}

/// Runs one call of a hook, catching a panic in it. Pools report events from inside
/// their own bookkeeping (a `get` holding a slot, a guard's `Drop`, a worker between
/// jobs), where a panic that escaped would leak what they hold, or abort the process
/// on a thread that is already unwinding. The panic hook has reported the panic by
/// then; the event is dropped, and so is the payload (guarded too: its `Drop` is user
/// code).
#[inline]
fn deliver(call: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(call)) {
        let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events").field("enabled", &self.is_enabled()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn hook_receives_finished_events() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let events = Events::new(move |t: Timing, d: Duration| sink.lock().unwrap().push((t, d)));
        let started = events.start();
        assert!(started.is_some());
        std::thread::sleep(Duration::from_millis(2));
        events.finish(Timing::JobRun, started);
        events.record(Timing::Dial, Duration::from_millis(7));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].0, Timing::JobRun);
        assert!(seen[0].1 >= Duration::from_millis(2));
        assert_eq!(seen[1], (Timing::Dial, Duration::from_millis(7)));
    }

    #[test]
    fn disabled_events_do_nothing() {
        let events = Events::default();
        assert!(!events.is_enabled());
        assert!(events.start().is_none());
        events.finish(Timing::AcquireWait, Some(Instant::now()));
        events.record(Timing::AcquireWait, Duration::from_secs(1));
        assert_eq!(format!("{events:?}"), "Events { enabled: false }");
    }

    /// A panicking hook, whose payload's own `Drop` panics as well, on every kind of
    /// report and also on a thread that is already unwinding: the caller carries on.
    #[test]
    fn a_panicking_hook_loses_the_event_and_the_caller_carries_on() {
        struct LoudPayload;
        impl Drop for LoudPayload {
            fn drop(&mut self) {
                panic!("the payload panics as it drops");
            }
        }
        struct Broken;
        impl EventHook for Broken {
            fn on_timing(&self, _: Timing, _: Duration) {
                std::panic::panic_any(LoudPayload);
            }
            fn on_connection(&self, _: ConnEvent) {
                panic!("a broken sink");
            }
        }
        let events = Events::new(Broken);
        let reporter = events.clone();
        let reported = std::thread::spawn(move || {
            reporter.record(Timing::Dial, Duration::from_millis(1));
            reporter.finish(Timing::JobRun, reporter.start());
            reporter.connection(ConnEvent::Checkin { id: 1, held: Duration::ZERO });
        })
        .join();
        let escaped = reported.is_err();
        // An escaped payload would panic again as it drops: never drop it here.
        if let Err(payload) = reported {
            std::mem::forget(payload);
        }
        assert!(!escaped, "a hook's panic reached the reporting caller");
        // Reported from a destructor while the thread unwinds: no abort.
        struct ReportsOnDrop(Events);
        impl Drop for ReportsOnDrop {
            fn drop(&mut self) {
                self.0.record(Timing::AcquireWait, Duration::ZERO);
                self.0.connection(ConnEvent::Close { id: 1, age: Duration::ZERO, reason: "x" });
            }
        }
        let unwound = std::thread::spawn(move || {
            let _reports = ReportsOnDrop(events);
            panic!("the reporting thread panics");
        })
        .join();
        assert!(unwound.is_err());
    }

    #[test]
    fn names_are_unique_snake_case() {
        let names: std::collections::HashSet<_> = Timing::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(names.len(), Timing::ALL.len());
        assert!(names.iter().all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
        assert_eq!(Timing::JobRun.to_string(), "job_run");
    }
}
