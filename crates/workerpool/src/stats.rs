//! Counters, kept so that the job path touches no contended cache line.

use crossbeam_utils::CachePadded;
use poolside_core::{MetricDesc, MetricVisitor};
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
    "Jobs that returned after their cancellation token was cancelled.",
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

/// All counters of a pool.
#[derive(Debug)]
pub(crate) struct Stats {
    pub(crate) submit: CachePadded<SubmitCounters>,
    pub(crate) workers: Box<[CachePadded<WorkerCounters>]>,
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

fn bump(counter: &AtomicU64) {
    // Single writer: a load and a store, no read-modify-write.
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
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
    pub(crate) fn new(workers: usize) -> Self {
        Stats {
            submit: CachePadded::new(SubmitCounters::default()),
            workers: (0..workers).map(|_| CachePadded::new(WorkerCounters::default())).collect(),
        }
    }

    pub(crate) fn totals(&self) -> Totals {
        let mut t = Totals {
            not_started: self.submit.drained_not_started.load(Ordering::Relaxed),
            ..Totals::default()
        };
        for w in self.workers.iter() {
            t.completed += w.completed.load(Ordering::Relaxed);
            t.panicked += w.panicked.load(Ordering::Relaxed);
            t.cancelled += w.cancelled.load(Ordering::Relaxed);
            t.not_started += w.not_started.load(Ordering::Relaxed);
            t.active += u64::from(w.busy.load(Ordering::Relaxed));
            t.alive += u64::from(w.alive.load(Ordering::Relaxed));
        }
        t
    }

    /// Reports every metric; `submitted` is counted per thread by the pool's gate.
    pub(crate) fn visit(&self, submitted: u64, queued: usize, v: &mut dyn MetricVisitor) {
        let t = self.totals();
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
