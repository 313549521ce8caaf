//! Metrics: the async pool's gauge and counter catalogue (same names and kinds, so
//! `poolside-metrics` exports a blocking pool exactly like an async one) and the
//! `Instrumented` impl.

use super::manager::Manager;
use super::pool::{CloseReason, Pool};
use crossbeam_utils::CachePadded;
use poolside_core::{Instrumented, MetricDesc, MetricVisitor};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

static OPEN: MetricDesc =
    MetricDesc::gauge("open", "Connections open: idle, in use or being opened.");
static IDLE: MetricDesc = MetricDesc::gauge("idle", "Connections waiting in the pool.");
static IN_USE: MetricDesc = MetricDesc::gauge("in_use", "Connections checked out.");
static WAITING: MetricDesc = MetricDesc::gauge("waiting", "Callers waiting in line.");
static DIALS: MetricDesc = MetricDesc::counter("dials", "Connection attempts.");
static DIAL_ERRORS: MetricDesc =
    MetricDesc::counter("dial_errors", "Connection attempts that failed or timed out.");
static ACQUIRES: MetricDesc = MetricDesc::counter("acquires", "Connections handed out.");
static RELEASES: MetricDesc = MetricDesc::counter("releases", "Connections returned for reuse.");
static EXHAUSTIONS: MetricDesc =
    MetricDesc::counter("exhaustions", "Gets that found every slot taken.");
static TIMEOUTS: MetricDesc = MetricDesc::counter("timeouts", "Gets that timed out waiting.");
static HEALTH_CHECKS: MetricDesc = MetricDesc::counter("health_checks", "Checkout health checks.");
static HEALTH_FAILS: MetricDesc = MetricDesc::counter("health_fails", "Failed health checks.");
static CLOSED_LIFETIME: MetricDesc =
    MetricDesc::counter("closed_lifetime", "Connections closed at their max lifetime.");
static CLOSED_IDLE: MetricDesc =
    MetricDesc::counter("closed_idle", "Connections closed after their max idle time.");
static CLOSED_BROKEN: MetricDesc =
    MetricDesc::counter("closed_broken", "Connections closed as broken or unhealthy.");

static CATALOGUE: [&MetricDesc; 15] = [
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

/// A counter bumped on every get and return: one cache-padded cell per thread
/// group, summed when read, so threads do not fight over one cache line.
#[derive(Debug, Default)]
pub(crate) struct Sharded {
    cells: [CachePadded<AtomicU64>; SHARDS],
}

const SHARDS: usize = 16;

thread_local! {
    static SHARD: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Relaxed) % SHARDS
    };
}

impl Sharded {
    pub(crate) fn bump(&self) {
        let cell = SHARD.with(|i| *i);
        self.cells[cell].fetch_add(1, Relaxed);
    }

    pub(crate) fn sum(&self) -> u64 {
        self.cells.iter().map(|c| c.load(Relaxed)).sum()
    }
}

/// The pool's counters (levels live in the locked state).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) acquires: Sharded,
    pub(crate) releases: Sharded,
    pub(crate) dials: AtomicU64,
    pub(crate) dial_errors: AtomicU64,
    pub(crate) exhaustions: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) health_checks: AtomicU64,
    pub(crate) health_fails: AtomicU64,
    closed_lifetime: AtomicU64,
    closed_idle: AtomicU64,
    closed_broken: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn count_close(&self, reason: CloseReason) {
        match reason {
            CloseReason::Lifetime => Self::bump(&self.closed_lifetime),
            CloseReason::Idle => Self::bump(&self.closed_idle),
            CloseReason::Broken => Self::bump(&self.closed_broken),
            CloseReason::Removed => {}
        }
    }
}

/// Reports the pool's gauges and counters under the async pool's names and kind
/// (`connpool`).
///
/// ```
/// use poolside_connpool::blocking::{Manager, Pool};
/// use poolside_core::Snapshot;
/// # struct Noop;
/// # impl Manager for Noop {
/// #     type Connection = ();
/// #     type Error = std::io::Error;
/// #     fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
/// #     fn check(&self, _: &mut ()) -> Result<(), Self::Error> { Ok(()) }
/// # }
/// let pool = Pool::new(Noop);
/// drop(pool.get().unwrap());
/// let snap = Snapshot::of(&pool);
/// assert_eq!(snap.kind, "connpool");
/// assert_eq!(snap.value("dials"), Some(1));
/// assert_eq!(snap.value("releases"), Some(1));
/// assert_eq!(snap.value("idle"), Some(1));
/// ```
impl<M: Manager> Instrumented for Pool<M> {
    fn kind(&self) -> &'static str {
        "connpool"
    }

    fn catalogue(&self) -> &'static [&'static MetricDesc] {
        &CATALOGUE
    }

    fn visit_metrics(&self, visitor: &mut dyn MetricVisitor) {
        let c = &self.shared.counters;
        let status = self.status();
        let values: [(&'static MetricDesc, u64); 15] = [
            (&OPEN, status.open as u64),
            (&IDLE, status.idle as u64),
            (&IN_USE, status.in_use as u64),
            (&WAITING, status.waiting as u64),
            (&DIALS, c.dials.load(Relaxed)),
            (&DIAL_ERRORS, c.dial_errors.load(Relaxed)),
            (&ACQUIRES, c.acquires.sum()),
            (&RELEASES, c.releases.sum()),
            (&EXHAUSTIONS, c.exhaustions.load(Relaxed)),
            (&TIMEOUTS, c.timeouts.load(Relaxed)),
            (&HEALTH_CHECKS, c.health_checks.load(Relaxed)),
            (&HEALTH_FAILS, c.health_fails.load(Relaxed)),
            (&CLOSED_LIFETIME, c.closed_lifetime.load(Relaxed)),
            (&CLOSED_IDLE, c.closed_idle.load(Relaxed)),
            (&CLOSED_BROKEN, c.closed_broken.load(Relaxed)),
        ];
        visitor.visit_all(&[], &values);
    }
}
