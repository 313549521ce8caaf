//! Counters, kept so that the job path touches no contended cache line.

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;
use poolside_core::{MetricDesc, MetricVisitor};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static SUBMITTED: MetricDesc = MetricDesc::counter("submitted", "Jobs accepted into the queue.");
static REJECTED: MetricDesc =
    MetricDesc::counter("rejected", "Jobs handed back: queue full, timed out or pool closed.");
static QUEUED: MetricDesc = MetricDesc::gauge("queued", "Jobs waiting in the queue.");
static ACTIVE: MetricDesc = MetricDesc::gauge("active", "Workers running a job right now.");
static WORKERS: MetricDesc = MetricDesc::gauge("workers", "Worker threads alive.");
static COMPLETED: MetricDesc = MetricDesc::counter("completed", "Jobs that returned normally.");
static PANICKED: MetricDesc =
    MetricDesc::counter("panicked", "Jobs that panicked (caught; the worker kept serving).");
static CANCELLED: MetricDesc = MetricDesc::counter(
    "cancelled",
    "Jobs that returned after their cancellation token was cancelled, or were cancelled through their handle before they started.",
);
static NOT_STARTED: MetricDesc =
    MetricDesc::counter("not_started", "Queued jobs dropped unrun at a shutdown deadline.");

pub(crate) static CATALOGUE: [&MetricDesc; 9] = [
    &SUBMITTED,
    &REJECTED,
    &QUEUED,
    &ACTIVE,
    &WORKERS,
    &COMPLETED,
    &PANICKED,
    &CANCELLED,
    &NOT_STARTED,
];

/// Counters written by one worker only, so no two workers share a cache line.
#[derive(Debug, Default)]
pub(crate) struct WorkerCounters {
    pub(crate) busy: AtomicBool,
    pub(crate) alive: AtomicBool,
    pub(crate) completed: AtomicU64,
    pub(crate) panicked: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) not_started: AtomicU64,
}

/// Submitter-side counters, apart from the workers' lines.
#[derive(Debug, Default)]
pub(crate) struct SubmitCounters {
    pub(crate) rejected: AtomicU64,
    /// Jobs the shutdown itself drained from the queue unrun (no worker left to).
    pub(crate) drained_not_started: AtomicU64,
}

/// One worker's counters, shared by the worker and the pool's stats.
pub(crate) type WorkerStats = Arc<CachePadded<WorkerCounters>>;

/// All counters of a pool.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) submit: CachePadded<SubmitCounters>,
    /// Every worker ever started: a retired worker's counts stay in the totals.
    workers: Mutex<Vec<WorkerStats>>,
}

/// Totals summed over the workers, at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) completed: u64,
    pub(crate) panicked: u64,
    pub(crate) cancelled: u64,
    pub(crate) not_started: u64,
    pub(crate) active: u64,
    pub(crate) alive: u64,
}

impl Totals {
    /// Jobs that will not run any more: every accepted job ends up here exactly once.
    pub(crate) fn finished(&self) -> u64 {
        self.completed + self.panicked + self.cancelled + self.not_started
    }
}

fn bump(counter: &AtomicU64) {
    // Single writer: a load and a store, no read-modify-write. Release: a snapshot that
    // sees the count sees the job's earlier steps (its acceptance) too.
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Release);
}

impl WorkerCounters {
    pub(crate) fn count_completed(&self) {
        bump(&self.completed);
    }
    pub(crate) fn count_panicked(&self) {
        bump(&self.panicked);
    }
    pub(crate) fn count_cancelled(&self) {
        bump(&self.cancelled);
    }
    pub(crate) fn count_not_started(&self) {
        bump(&self.not_started);
    }
}

impl Stats {
    /// Counters for a new worker, alive from now on.
    pub(crate) fn add_worker(&self) -> WorkerStats {
        let counters = WorkerStats::default();
        counters.alive.store(true, Ordering::Release);
        self.workers.lock().push(counters.clone());
        counters
    }

    /// The totals. Each job passes through accepted, queued, active and finished in
    /// that order; reading finished first, then active (and the caller reading queued,
    /// then accepted, after) means no job is counted twice, so
    /// `finished + active + queued <= submitted` holds for every snapshot.
    pub(crate) fn totals(&self) -> Totals {
        let workers = self.workers.lock();
        let mut t = Totals::default();
        for w in workers.iter() {
            t.completed += w.completed.load(Ordering::Acquire);
            t.panicked += w.panicked.load(Ordering::Acquire);
            t.cancelled += w.cancelled.load(Ordering::Acquire);
            t.not_started += w.not_started.load(Ordering::Acquire);
        }
        t.not_started += self.submit.drained_not_started.load(Ordering::Acquire);
        for w in workers.iter() {
            t.active += u64::from(w.busy.load(Ordering::Acquire));
            t.alive += u64::from(w.alive.load(Ordering::Acquire));
        }
        t
    }

    /// Reports every metric, reading them in the order that keeps a snapshot
    /// consistent (see [`totals`](Self::totals)): `queued` and then `submitted` (counted
    /// per thread by the pool's gate) are read after the totals.
    pub(crate) fn visit(
        &self,
        queued: impl FnOnce() -> usize,
        submitted: impl FnOnce() -> u64,
        v: &mut dyn MetricVisitor,
    ) {
        let t = self.totals();
        let queued = queued();
        let submitted = submitted();
        let submit = &self.submit;
        let values: [(&'static MetricDesc, u64); 9] = [
            (&SUBMITTED, submitted),
            (&REJECTED, submit.rejected.load(Ordering::Relaxed)),
            (&QUEUED, queued as u64),
            (&ACTIVE, t.active),
            (&WORKERS, t.alive),
            (&COMPLETED, t.completed),
            (&PANICKED, t.panicked),
            (&CANCELLED, t.cancelled),
            (&NOT_STARTED, t.not_started),
        ];
        v.visit_all(&[], &values);
    }
}
