//! Metrics: the gauge and counter catalogue and the `Instrumented` impl.
//!
//! Gauges (and the release / exhaustion counters) are written only while the pool's
//! lock is held, with a plain load + store instead of a read-modify-write: the cache
//! line is already owned by the lock holder, so they cost nothing extra, and readers
//! still need no lock. The remaining counters are bumped with relaxed `fetch_add`.

use crate::manager::Manager;
use crate::pool::{CloseReason, Pool, Status};
use poolside_core::{Instrumented, Metric, MetricDesc, MetricVisitor};
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

/// Values written only under the pool lock.
#[derive(Debug, Default)]
pub(crate) struct Gauges {
    open: AtomicUsize,
    idle: AtomicUsize,
    in_use: AtomicUsize,
    waiting: AtomicUsize,
    acquires: AtomicU64,
    releases: AtomicU64,
    exhaustions: AtomicU64,
}

/// Store-only increment: callers hold the pool lock, so no update can be lost.
fn bump_locked(counter: &AtomicU64) {
    counter.store(counter.load(Relaxed) + 1, Relaxed);
}

impl Gauges {
    pub(crate) fn publish(&self, open: usize, idle: usize, in_use: usize, waiting: usize) {
        self.open.store(open, Relaxed);
        self.idle.store(idle, Relaxed);
        self.in_use.store(in_use, Relaxed);
        self.waiting.store(waiting, Relaxed);
    }

    pub(crate) fn bump_acquires(&self) {
        bump_locked(&self.acquires);
    }

    pub(crate) fn bump_releases(&self) {
        bump_locked(&self.releases);
    }

    pub(crate) fn bump_exhaustions(&self) {
        bump_locked(&self.exhaustions);
    }

    pub(crate) fn status(&self, max_size: usize) -> Status {
        Status {
            open: self.open.load(Relaxed),
            idle: self.idle.load(Relaxed),
            in_use: self.in_use.load(Relaxed),
            waiting: self.waiting.load(Relaxed),
            max_size,
        }
    }
}

/// Counters bumped outside the lock.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) dials: AtomicU64,
    pub(crate) dial_errors: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) health_checks: AtomicU64,
    pub(crate) health_fails: AtomicU64,
    closed_lifetime: AtomicU64,
    closed_idle: AtomicU64,
    closed_broken: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn count_close(&self, reason: CloseReason) {
        match reason {
            CloseReason::Lifetime => self.bump(&self.closed_lifetime),
            CloseReason::Idle => self.bump(&self.closed_idle),
            CloseReason::Broken => self.bump(&self.closed_broken),
            CloseReason::Removed => {}
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

    fn visit_metrics(&self, visitor: &mut dyn MetricVisitor) {
        let g = &self.shared.gauges;
        let c = &self.shared.counters;
        let values: [(&'static MetricDesc, u64); 15] = [
            (&OPEN, g.open.load(Relaxed) as u64),
            (&IDLE, g.idle.load(Relaxed) as u64),
            (&IN_USE, g.in_use.load(Relaxed) as u64),
            (&WAITING, g.waiting.load(Relaxed) as u64),
            (&DIALS, c.dials.load(Relaxed)),
            (&DIAL_ERRORS, c.dial_errors.load(Relaxed)),
            (&ACQUIRES, g.acquires.load(Relaxed)),
            (&RELEASES, g.releases.load(Relaxed)),
            (&EXHAUSTIONS, g.exhaustions.load(Relaxed)),
            (&TIMEOUTS, c.timeouts.load(Relaxed)),
            (&HEALTH_CHECKS, c.health_checks.load(Relaxed)),
            (&HEALTH_FAILS, c.health_fails.load(Relaxed)),
            (&CLOSED_LIFETIME, c.closed_lifetime.load(Relaxed)),
            (&CLOSED_IDLE, c.closed_idle.load(Relaxed)),
            (&CLOSED_BROKEN, c.closed_broken.load(Relaxed)),
        ];
        for (desc, value) in values {
            visitor.visit(Metric { desc, labels: &[], value });
        }
    }
}
