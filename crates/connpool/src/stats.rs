//! Metrics: the gauge and counter catalogue and the `Instrumented` impl.
//!
//! Readers never take the pool lock. Levels are mirrored from the locked state, the
//! idle count is the sum of the idle stripes' lengths, in-use is derived; the two
//! counters every get and return bump are sharded per thread; the rest use relaxed
//! `fetch_add`.

use crate::manager::Manager;
use crate::pool::{CloseReason, Pool};
use crossbeam_utils::CachePadded;
use poolside_core::{Instrumented, MetricDesc, MetricVisitor};
use std::sync::atomic::{
    AtomicU64, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release, SeqCst},
    fence,
};

pub(crate) static OPEN: MetricDesc =
    MetricDesc::gauge("open", "Connections open: idle, in use or being opened.");
pub(crate) static IDLE: MetricDesc = MetricDesc::gauge("idle", "Connections waiting in the pool.");
pub(crate) static IN_USE: MetricDesc = MetricDesc::gauge("in_use", "Connections checked out.");
pub(crate) static WAITING: MetricDesc = MetricDesc::gauge("waiting", "Callers waiting in line.");
pub(crate) static DIALS: MetricDesc = MetricDesc::counter("dials", "Connection attempts.");
pub(crate) static DIAL_ERRORS: MetricDesc =
    MetricDesc::counter("dial_errors", "Connection attempts that failed or timed out.");
pub(crate) static ACQUIRES: MetricDesc = MetricDesc::counter("acquires", "Connections handed out.");
pub(crate) static RELEASES: MetricDesc =
    MetricDesc::counter("releases", "Connections returned for reuse.");
pub(crate) static EXHAUSTIONS: MetricDesc =
    MetricDesc::counter("exhaustions", "Gets that found every slot taken.");
pub(crate) static TIMEOUTS: MetricDesc =
    MetricDesc::counter("timeouts", "Gets that timed out waiting.");
pub(crate) static HEALTH_CHECKS: MetricDesc =
    MetricDesc::counter("health_checks", "Checkout health checks.");
pub(crate) static HEALTH_FAILS: MetricDesc =
    MetricDesc::counter("health_fails", "Failed health checks.");
pub(crate) static CLOSED_LIFETIME: MetricDesc =
    MetricDesc::counter("closed_lifetime", "Connections closed at their max lifetime.");
pub(crate) static CLOSED_IDLE: MetricDesc =
    MetricDesc::counter("closed_idle", "Connections closed after their max idle time.");
pub(crate) static CLOSED_BROKEN: MetricDesc =
    MetricDesc::counter("closed_broken", "Connections closed as broken or unhealthy.");

/// The catalogue of both pools, async and blocking: the same names, kinds and help
/// texts, so `poolside-metrics` exports them alike.
pub(crate) static CATALOGUE: [&MetricDesc; 15] = [
    &OPEN,
    &IDLE,
    &IN_USE,
    &WAITING,
    &DIALS,
    &DIAL_ERRORS,
    &ACQUIRES,
    &RELEASES,
    &EXHAUSTIONS,
    &TIMEOUTS,
    &HEALTH_CHECKS,
    &HEALTH_FAILS,
    &CLOSED_LIFETIME,
    &CLOSED_IDLE,
    &CLOSED_BROKEN,
];

/// Levels mirrored from the locked state (written only under the pool lock, inside
/// a sequence lock so readers get `open` and `max_size` of one moment), and the
/// exhaustion counter (also bumped under the lock). Each group sits on its own cache
/// line: every lock-free get and return reads `waiting` and the levels, while a
/// line of waiters changes `waiting` and the counter on every join, so a publish
/// writes only the values that changed.
#[derive(Debug, Default)]
pub(crate) struct Gauges {
    waiting: CachePadded<AtomicUsize>,
    levels: CachePadded<LevelCells>,
    exhaustions: CachePadded<AtomicU64>,
}

#[derive(Debug, Default)]
struct LevelCells {
    /// Odd while `publish` writes, bumped twice per publish that changes a level.
    seq: AtomicU64,
    open: AtomicUsize,
    max_size: AtomicUsize,
}

/// Store-only increment: callers hold the pool lock, so no update can be lost.
fn bump_locked(counter: &AtomicU64) {
    counter.store(counter.load(Relaxed) + 1, Relaxed);
}

/// `open` and `max_size` as published together, with the sequence number they were
/// read under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Levels {
    pub(crate) seq: u64,
    pub(crate) open: usize,
    pub(crate) max_size: usize,
}

impl Gauges {
    /// Called with the pool lock held (the only writer).
    /// Values equal to those already published are not written again (the loads
    /// see this writer's own last stores): a reader holding an older sequence
    /// number still finds it current, and a `waiting` left unchanged keeps its
    /// place in the idle hand-shake (see `Shared::acquire`), which only asks
    /// whether it is zero.
    pub(crate) fn publish(&self, open: usize, max_size: usize, waiting: usize) {
        let l = &self.levels;
        if l.open.load(Relaxed) != open || l.max_size.load(Relaxed) != max_size {
            let seq = l.seq.load(Relaxed);
            l.seq.store(seq.wrapping_add(1), Relaxed);
            fence(Release);
            l.open.store(open, Relaxed);
            l.max_size.store(max_size, Relaxed);
            l.seq.store(seq.wrapping_add(2), Release);
        }
        let was = self.waiting.load(Relaxed);
        if was != waiting {
            // Only whether anyone waits takes part in the hand-shake: a line that
            // grows or shrinks without emptying needs no fence.
            let order = if was == 0 || waiting == 0 { SeqCst } else { Relaxed };
            self.waiting.store(waiting, order);
        }
    }

    /// `open` and `max_size` of one publish, or `None` if a publish was under way.
    pub(crate) fn levels(&self) -> Option<Levels> {
        let l = &self.levels;
        let seq = l.seq.load(Acquire);
        if seq % 2 == 1 {
            return None;
        }
        let open = l.open.load(Relaxed);
        let max_size = l.max_size.load(Relaxed);
        fence(Acquire);
        (l.seq.load(Relaxed) == seq).then_some(Levels { seq, open, max_size })
    }

    /// The publish sequence number now (compare with [`Levels::seq`]).
    pub(crate) fn seq(&self) -> u64 {
        self.levels.seq.load(Acquire)
    }

    /// A caller is about to look at the idle stripes one last time before waiting.
    pub(crate) fn announce_waiter(&self) {
        self.waiting.store(1, SeqCst);
    }

    #[inline]
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(SeqCst)
    }

    #[inline]
    pub(crate) fn max_size(&self) -> usize {
        self.levels.max_size.load(Relaxed)
    }

    /// Whether every slot is taken (a snapshot read without the lock).
    #[inline]
    pub(crate) fn at_capacity(&self) -> bool {
        self.levels.open.load(Relaxed) >= self.levels.max_size.load(Relaxed)
    }

    /// Whether the pool holds more slots than its (shrunk) maximum.
    #[inline]
    pub(crate) fn over_size(&self) -> bool {
        self.levels.open.load(Relaxed) > self.levels.max_size.load(Relaxed)
    }

    pub(crate) fn bump_exhaustions(&self) {
        bump_locked(&self.exhaustions);
    }

    /// Callers waiting in line (a plain read, for reports).
    pub(crate) fn waiting_now(&self) -> usize {
        self.waiting.load(Relaxed)
    }
}

/// The counters every get and return bump are poolside-core's per-thread sharded
/// counter (`counter.bump()`, summed when read); the blocking pool and the failover
/// pool use it under this name too.
pub(crate) use poolside_core::ShardedCounter as Sharded;

/// A count of rare events (dials, timeouts, health checks, closes): one shared
/// atomic, bumped outside the lock.
#[derive(Debug, Default)]
pub(crate) struct Count(AtomicU64);

impl Count {
    pub(crate) fn bump(&self) {
        self.0.fetch_add(1, Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Counters bumped outside the lock: the hot pair per thread, the rest shared.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) acquires: Sharded,
    pub(crate) releases: Sharded,
    pub(crate) dials: Count,
    pub(crate) dial_errors: Count,
    pub(crate) timeouts: Count,
    pub(crate) health_checks: Count,
    pub(crate) health_fails: Count,
    pub(crate) closed_lifetime: Count,
    pub(crate) closed_idle: Count,
    pub(crate) closed_broken: Count,
}

impl Counters {
    pub(crate) fn count_close(&self, reason: CloseReason) {
        match reason {
            CloseReason::Lifetime => self.closed_lifetime.bump(),
            CloseReason::Idle => self.closed_idle.bump(),
            CloseReason::Broken => self.closed_broken.bump(),
            _ => {}
        }
    }
}

/// Reports the pool's gauges and counters without taking its lock.
///
/// ```
/// use poolside_connpool::{Builder, Manager, Pool};
/// use poolside_core::Snapshot;
/// # struct Noop;
/// # impl Manager for Noop {
/// #     type Connection = ();
/// #     type Error = std::convert::Infallible;
/// #     async fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
/// #     async fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = Pool::new(Noop);
/// drop(pool.get().await.unwrap());
/// let snap = Snapshot::of(&pool);
/// assert_eq!(snap.kind, "connpool");
/// assert_eq!(snap.value("dials"), Some(1));
/// assert_eq!(snap.value("releases"), Some(1));
/// # }
/// ```
impl<M: Manager> Instrumented for Pool<M> {
    fn kind(&self) -> &'static str {
        "connpool"
    }

    fn catalogue(&self) -> &'static [&'static MetricDesc] {
        &CATALOGUE
    }

    fn timings(&self) -> &'static [poolside_core::Timing] {
        &[poolside_core::Timing::AcquireWait, poolside_core::Timing::Dial]
    }

    fn visit_metrics(&self, visitor: &mut dyn MetricVisitor) {
        let g = &self.shared.gauges;
        let c = &self.shared.counters;
        let status = self.status();
        let values: [(&'static MetricDesc, u64); 15] = [
            (&OPEN, status.open as u64),
            (&IDLE, status.idle as u64),
            (&IN_USE, status.in_use as u64),
            (&WAITING, status.waiting as u64),
            (&DIALS, c.dials.get()),
            (&DIAL_ERRORS, c.dial_errors.get()),
            (&ACQUIRES, c.acquires.sum()),
            (&RELEASES, c.releases.sum()),
            (&EXHAUSTIONS, g.exhaustions.load(Relaxed)),
            (&TIMEOUTS, c.timeouts.get()),
            (&HEALTH_CHECKS, c.health_checks.get()),
            (&HEALTH_FAILS, c.health_fails.get()),
            (&CLOSED_LIFETIME, c.closed_lifetime.get()),
            (&CLOSED_IDLE, c.closed_idle.get()),
            (&CLOSED_BROKEN, c.closed_broken.get()),
        ];
        visitor.visit_all(&[], &values);
    }
}
